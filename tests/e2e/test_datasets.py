"""The Datasets view in Chromium against a real server: pick or drop a file, preview its first
rows and columns, choose the label column, upload, and see what the server stored; the API's
errors appear next to the form field they name; an upload can be deleted from the list.

Every number the page shows is compared with the API's own answer (GET /v1/datasets/{id})
and with the file the test wrote.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from typing import Any

import numpy as np
import pytest
from e2e_helpers import Server, screenshot

pytestmark = pytest.mark.browser

SPECIES = ["setosa", "virginica", "versicolor"]


def headered_csv(n_rows: int) -> tuple[str, list[list[str]]]:
    """A CSV whose label column ("species") comes first, so it must be picked, not defaulted."""
    rows = [
        [SPECIES[i % 4 % 3], f"{1 + i * 0.1:.1f}", f"{0.5 + (i % 7) * 0.2:.1f}", str(i % 4)]
        for i in range(n_rows)
    ]
    text = "species,sepal,petal,width\n" + "".join(",".join(r) + "\n" for r in rows)
    return text, rows


def headerless_csv(n_rows: int) -> tuple[str, list[list[str]]]:
    rows = [[f"{i * 0.5:.1f}", f"{(i % 5) - 2:.1f}", str(i % 2)] for i in range(n_rows)]
    return "".join(",".join(r) + "\n" for r in rows), rows


def csv_file(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


def drop_file(page: Any, name: str, text: str) -> None:
    """Drop a file on the drop area the way a browser does: a drop event with a DataTransfer."""
    transfer = page.evaluate_handle(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type: "text/csv" }));
            return transfer;
        }""",
        [name, text],
    )
    page.dispatch_event("#ds-drop", "drop", {"dataTransfer": transfer})


def preview_table(page: Any) -> tuple[list[str], list[list[str]]]:
    """The preview's column headings and body cells as the page shows them."""
    page.locator("#ds-preview-table").wait_for()
    head = page.locator("#ds-preview-table thead th").all_inner_texts()
    body = page.eval_on_selector_all(
        "#ds-preview-table tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))",
    )
    return head, body


def number_or_none(text: str) -> int | None:
    """A count the summary shows, or None where it shows a dash (features of a text set)."""
    return int(text) if text.isdigit() else None


def shown_summary(page: Any) -> dict[str, Any]:
    """The stored dataset's summary as the page shows it."""
    page.locator("#ds-sum-id").wait_for()
    labels = page.eval_on_selector_all(
        "#ds-sum-balance [data-class]", "els => els.map(e => e.dataset.class)"
    )
    counts = page.eval_on_selector_all(
        "#ds-sum-balance [data-count]", "els => els.map(e => Number(e.dataset.count))"
    )
    return {
        "id": page.inner_text("#ds-sum-id"),
        "n_rows": int(page.inner_text("#ds-sum-rows")),
        "n_train": int(page.inner_text("#ds-sum-train")),
        "n_test": int(page.inner_text("#ds-sum-test")),
        "n_features": number_or_none(page.inner_text("#ds-sum-features")),
        "classes": page.inner_text("#ds-sum-classes"),
        "class_balance": dict(zip(labels, counts, strict=True)),
    }


def assert_summary_is_stored(page: Any, server: Server, n_rows: int, balance: Counter[str]) -> str:
    """The summary on the page equals the API's record, which holds what the file held."""
    shown = shown_summary(page)
    with server.client() as http:
        response = http.get(f"/v1/datasets/{shown['id']}")
    assert response.status_code == 200, response.text
    stored = response.json()
    assert shown == {
        "id": stored["id"],
        "n_rows": stored["n_rows"],
        "n_train": stored["n_train"],
        "n_test": stored["n_test"],
        "n_features": stored["n_features"],
        "classes": ", ".join(str(c) for c in stored["classes"]),
        "class_balance": stored["class_balance"],
    }
    assert stored["n_rows"] == n_rows and stored["n_train"] + stored["n_test"] == n_rows
    assert stored["class_balance"] == {str(k): v for k, v in balance.items()}
    return str(stored["id"])


def test_upload_csv_with_header_preview_label_summary_and_list(page: Any, server: Server) -> None:
    text, rows = headered_csv(24)
    page.goto(f"{server.base}/#/datasets")
    page.locator("a[data-nav='datasets'].active").wait_for()
    page.set_input_files("#ds-file", csv_file("flowers.csv", text))

    head, body = preview_table(page)
    assert head == ["species", "sepal", "petal", "width"]
    assert body == rows[:10]  # the first data rows, the header row not among them
    assert page.is_checked("#ds-header")
    # The last column is preselected; the label here is the first one.
    assert page.eval_on_selector("#ds-label", "s => s.selectedOptions[0].textContent") == "width"
    page.select_option("#ds-label", label="species")
    page.locator("#ds-preview-table th.label-col:has-text('species')").wait_for()
    assert page.input_value("#ds-name") == "flowers"
    page.fill("#ds-name", "flowers-ui")
    page.fill("#ds-test", "0.25")
    page.click("#ds-upload")

    dataset_id = assert_summary_is_stored(page, server, 24, Counter(r[0] for r in rows))
    assert page.inner_text("#ds-sum-name") == "flowers-ui"
    with server.client() as http:
        stored = http.get(f"/v1/datasets/{dataset_id}").json()
    assert stored["test_fraction"] == 0.25 and stored["n_features"] == 3
    row = page.locator(f"#ds-list tr[data-id='{dataset_id}']")
    row.wait_for()
    assert "flowers-ui" in row.inner_text()
    assert page.locator("#ds-error").inner_text() == ""
    screenshot(page, "datasets")


def test_dropped_file_is_previewed_uploaded_and_deleted(page: Any, server: Server) -> None:
    text, rows = headered_csv(12)
    page.goto(f"{server.base}/#/datasets")
    page.locator("#ds-list").wait_for()
    drop_file(page, "dropped.csv", text)

    head, body = preview_table(page)
    assert head == ["species", "sepal", "petal", "width"] and body == rows[:10]
    page.select_option("#ds-label", label="species")
    page.fill("#ds-test", "0.5")
    page.click("#ds-upload")
    dataset_id = assert_summary_is_stored(page, server, 12, Counter(r[0] for r in rows))

    page.click(f"#ds-list button[data-delete='{dataset_id}']")
    page.locator(f"#ds-list tr[data-id='{dataset_id}']").wait_for(state="detached")
    assert page.locator("#ds-summary-card").is_hidden()
    with server.client() as http:
        assert http.get(f"/v1/datasets/{dataset_id}").status_code == 404


def npz_bytes(y: list[int]) -> bytes:
    buffer = io.BytesIO()
    x = np.arange(len(y) * 2, dtype=np.float64).reshape(len(y), 2)
    np.savez(buffer, X=x, y=np.array(y))
    return buffer.getvalue()


def test_binary_files_have_no_preview_but_still_upload(page: Any, server: Server) -> None:
    text, rows = headered_csv(16)
    page.goto(f"{server.base}/#/datasets")
    page.locator("#ds-list").wait_for()

    y = [0, 1, 1, 0, 1, 0, 1, 1, 0, 1]
    page.set_input_files(
        "#ds-file",
        {"name": "arrays.npz", "mimeType": "application/zip", "buffer": npz_bytes(y)},
    )
    page.locator("#ds-preview-note:has-text('No preview')").wait_for()
    assert "npz" in page.inner_text("#ds-preview-note")
    assert page.locator("#ds-preview-table").count() == 0
    page.click("#ds-upload")
    assert_summary_is_stored(page, server, len(y), Counter(str(v) for v in y))

    # A gzipped CSV: no preview, so the label column is typed (a name here).
    packed = gzip.compress(text.encode())
    page.set_input_files(
        "#ds-file", {"name": "packed.csv.gz", "mimeType": "application/gzip", "buffer": packed}
    )
    page.locator("#ds-preview-note:has-text('compressed')").wait_for()
    assert page.locator("#ds-summary-card").is_visible()  # the last upload's summary stays
    page.fill("#ds-label-text", "species")
    page.click("#ds-upload")
    page.locator("#ds-sum-name:has-text('packed')").wait_for()
    assert_summary_is_stored(page, server, 16, Counter(r[0] for r in rows))


def test_label_tab_text_file_previews_label_and_text(page: Any, server: Server) -> None:
    lines = [
        ("spam" if i % 3 == 0 else "ham", f"message number {i}, with a comma") for i in range(12)
    ]
    text = "".join(f"{label}\t{body}\n" for label, body in lines)
    page.goto(f"{server.base}/#/datasets")
    page.locator("#ds-list").wait_for()
    page.set_input_files(
        "#ds-file", {"name": "sms.tsv", "mimeType": "text/plain", "buffer": text.encode()}
    )
    head, body = preview_table(page)
    assert head == ["label", "text"]
    assert body == [list(pair) for pair in lines[:10]]  # split at the first tab only
    assert page.is_disabled("#ds-label") and page.is_disabled("#ds-header")
    page.click("#ds-upload")
    assert_summary_is_stored(page, server, 12, Counter(label for label, _ in lines))
    assert page.inner_text("#ds-sum-task") == "text"


def test_headerless_csv_numbers_columns_and_sends_the_index(page: Any, server: Server) -> None:
    text, rows = headerless_csv(20)
    page.goto(f"{server.base}/#/datasets")
    page.locator("#ds-list").wait_for()
    page.set_input_files("#ds-file", csv_file("numbers.csv", text))

    head, body = preview_table(page)
    assert head == ["column 0", "column 1", "column 2"]
    assert body == rows[:10]  # the first row is data, not a header
    assert not page.is_checked("#ds-header")
    assert page.eval_on_selector("#ds-label", "s => s.selectedOptions[0].textContent") == (
        "column 2"
    )
    page.click("#ds-upload")
    assert_summary_is_stored(page, server, 20, Counter(r[2] for r in rows))


def test_api_errors_are_shown_next_to_the_field_they_name(page: Any, server: Server) -> None:
    ragged = "a,b,label\n1,2,0\n3,4\n5,6,1\n7,8,0\n"
    with server.client() as http:  # what the API answers for the same upload
        answer = http.post(
            "/v1/datasets",
            files={"file": ("ragged.csv", ragged.encode(), "text/csv")},
            data={"name": "ragged", "label_column": "label", "test_fraction": "0.2"},
        )
    assert answer.status_code in (400, 422), answer.text
    error = answer.json()["error"]
    assert [d["field"] for d in error["details"]] == ["file"]

    page.goto(f"{server.base}/#/datasets")
    page.locator("#ds-list").wait_for()
    page.set_input_files("#ds-file", csv_file("ragged.csv", ragged))
    preview_table(page)
    assert page.eval_on_selector("#ds-label", "s => s.selectedOptions[0].textContent") == "label"
    page.click("#ds-upload")
    page.locator("#ds-error .error").wait_for()
    assert error["message"] in page.inner_text("#ds-error")
    file_error = page.locator(".field-error[data-field='file']")
    assert file_error.inner_text() == error["details"][0]["message"]
    assert "invalid" in (page.get_attribute("#ds-drop", "class") or "")
    assert page.locator(".field-error[data-field='name']").inner_text() == ""
    with server.client() as http:  # nothing was stored
        names = [d["name"] for d in http.get("/v1/datasets").json()["datasets"]]
    assert "ragged" not in names

    # A name already taken: the error moves to the name field.
    text, _ = headered_csv(10)
    with server.client() as http:
        first = http.post(
            "/v1/datasets",
            files={"file": ("taken.csv", text.encode(), "text/csv")},
            data={"label_column": "species"},
        )
    assert first.status_code == 201, first.text
    page.set_input_files("#ds-file", csv_file("taken.csv", text))
    preview_table(page)
    assert page.inner_text("#ds-error") == ""  # a new file clears the old errors
    assert page.eval_on_selector("#ds-label", "s => s.selectedOptions[0].textContent") == "width"
    page.select_option("#ds-label", label="species")
    page.click("#ds-upload")
    name_error = page.locator(".field-error[data-field='name']")
    name_error.wait_for()
    assert "already exists" in name_error.inner_text()
    assert "taken" in page.inner_text("#ds-error")
    assert page.locator(".field-error[data-field='file']").inner_text() == ""
