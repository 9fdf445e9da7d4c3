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

#: Why a test that needs the SMS Spam Collection skips: how an outside contributor gets it.
SMS_SPAM_MISSING = (
    "needs the SMS Spam Collection offline: download it from "
    "https://archive.ics.uci.edu/dataset/228/sms+spam+collection and put its SMSSpamCollection "
    "file in shared/datasets/sms-spam/ next to the checkout"
)
#: The same for Fashion-MNIST (Debian's package; MNIST itself is downloaded, never needed here).
FASHION_MISSING = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
