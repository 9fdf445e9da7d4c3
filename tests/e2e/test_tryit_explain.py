"""Try it's explanations, in Chromium against a real server: the digit's saliency map over
the drawing, and the words that pushed the spam score highlighted. The models are prepared
as in test_tryit (a digit model trained on scikit-learn's bundled digits and uploaded; a
spam model trained by a real job on the shared SMS Spam copy)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from e2e_helpers import Server, screenshot
from test_tryit import SPAM_SPEC, digit_model_file, draw_seven, require_route
from waiting import wait_until

pytestmark = pytest.mark.browser


def test_saliency_map_over_the_drawing(page: Any, server: Server) -> None:
    require_route(server, "/v1/mnist/predict")
    with server.client() as http:
        files = {"file": ("mnist.npz", digit_model_file(), "application/octet-stream")}
        response = http.post("/v1/models/mnist/versions", files=files)
        assert response.status_code == 201, response.text

    page.goto(f"{server.base}/#/try")
    draw_seven(page)
    page.wait_for_function("Number(document.querySelector('#digit-saliency').dataset.cells) > 0")
    assert page.inner_text("#digit-result") == "7"
    assert "pushed toward 7" in page.inner_text("#digit-saliency-note")
    # The overlay really is painted: some of its pixels are not transparent.
    painted = page.evaluate(
        """() => {
          const c = document.querySelector('#digit-saliency');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
          return n;
        }"""
    )
    assert painted > 100
    screenshot(page, "try-it-saliency")

    page.click("#digit-clear")
    assert page.locator("#digit-saliency").get_attribute("data-cells") == "0"
    assert page.inner_text("#digit-saliency-note") == ""


def test_spam_words_highlighted(page: Any, server: Server, sms_spam_path: Any) -> None:
    require_route(server, "/v1/spam/score")
    target = server.data_dir / "datasets" / "sms-spam" / "SMSSpamCollection"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sms_spam_path, target)
    with server.client() as http:
        body = {"spec": SPAM_SPEC, "dataset": "sms-spam", "model_name": "spam"}
        job = http.post("/v1/jobs", json=body).json()
        state = wait_until(
            lambda: (
                (s := http.get(f"/v1/jobs/{job['id']}").json())["status"] in ("succeeded", "failed")
                and s
            ),
            timeout=120,
            what="the spam job to finish",
        )
        assert state["status"] == "succeeded", state

    page.goto(f"{server.base}/#/try")
    page.fill("#spam-text", "WINNER!! Claim your free prize now, call 09061701461 txt WIN")
    page.click("#spam-score")
    page.wait_for_selector("#spam-label.spam")
    marks = page.locator("#spam-highlight mark")
    assert marks.count() > 0
    pushed = {
        m.inner_text().lower(): float(m.get_attribute("data-weight") or 0) for m in marks.all()
    }
    # The words the model says pushed toward spam are marked as such, and vice versa.
    toward_spam = page.locator("#spam-highlight mark.to-spam").all_inner_texts()
    assert toward_spam and all(pushed[w.lower()] > 0 for w in toward_spam)
    assert page.locator("#spam-features li").count() > 0
    # The highlighted message keeps the text as typed.
    assert page.inner_text("#spam-highlight") == page.input_value("#spam-text")
    screenshot(page, "try-it-spam-words")
