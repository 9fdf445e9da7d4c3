"""Where the team's shared test data lives (never committed): ../shared next to the checkout,
or /work/shared when the checkout is a clone elsewhere (as in CI)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SHARED = (ROOT.parent / "shared", Path("/work/shared"))


def shared_file(*parts: str) -> Path:
    """The first existing copy of shared/<parts>, else the first candidate (for skip reasons)."""
    candidates = [base.joinpath(*parts) for base in _SHARED]
    return next((path for path in candidates if path.is_file()), candidates[0])


SMS_SPAM = shared_file("datasets", "sms-spam", "SMSSpamCollection")
