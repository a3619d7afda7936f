"""The page at ``/`` in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
type a text, click, and check the bars against the model's probabilities."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="bertkit serve needs the serve extra")
pytest.importorskip("selenium", reason="the page test needs selenium (the dev extra)")

from helpers import live_server  # noqa: E402

from bertkit import TextClassifier  # noqa: E402
from bertkit.serving import ServeSettings, create_app  # noqa: E402


def _chromium() -> tuple[str, str] | None:
    browser = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    return (browser, driver) if browser and driver else None


FOUND = _chromium()
pytestmark = pytest.mark.skipif(
    FOUND is None,
    reason="no chromium + chromedriver on this machine (Debian: apt-get install chromium chromium-driver; "
    "scripts/dev.sh installs them when run as root)",
)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = FOUND
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1100,900", "--disable-extensions", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="bertkit-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    # An explicit driver path: Selenium Manager must not try to download one.
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    chrome.set_page_load_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _bars(chrome) -> dict[str, tuple[float, float]]:
    """label -> (probability the page was given, drawn width share of the track), read in one go (the page
    replaces the bars on each answer)."""
    rows = chrome.execute_script(
        "return [...document.querySelectorAll('.bar')].map((bar) => [bar.dataset.label, bar.dataset.probability,"
        " bar.querySelector('.fill').getBoundingClientRect().width / bar.getBoundingClientRect().width]);"
    )
    return {label: (float(p), float(share)) for label, p, share in rows}


def test_page_shows_labels_metadata_and_probability_bars(browser, tiny_classifier, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    classifier = TextClassifier.load(tiny_classifier, device="cpu")
    text = "a wonderful and moving film"
    wait = WebDriverWait(browser, 30)
    with live_server(create_app(tiny_classifier, ServeSettings(device="cpu"))) as url:
        browser.get(url + "/")
        wait.until(lambda b: "labels" in b.find_element(By.ID, "meta").text)
        assert "text-classification" in browser.find_element(By.ID, "subtitle").text
        meta = browser.find_element(By.ID, "meta").text
        assert "negative" in meta and "positive" in meta and "32 tokens" in meta

        browser.find_element(By.ID, "text").send_keys(text)
        browser.find_element(By.ID, "submit").click()
        wait.until(seen.visibility_of_element_located((By.CSS_SELECTOR, "#result .bar")))
        expected = classifier.predict_proba([text])[0]
        bars = _bars(browser)
        assert list(bars) == ["negative", "positive"]
        for label, row_p in zip(classifier.classes_, expected, strict=True):
            given, drawn = bars[label]
            assert given == pytest.approx(float(row_p), abs=1e-5)
            assert drawn == pytest.approx(float(row_p), abs=0.01)
        best = classifier.classes_[int(expected.argmax())]
        assert browser.find_element(By.ID, "verdict").text.startswith(best)

        # A model trained on single texts refuses pairs (issue 19), so the page does not offer the pair box.
        assert classifier.text_pair_ is False
        assert not browser.find_element(By.ID, "use-pair").is_displayed()
        assert not browser.find_element(By.ID, "pair").is_displayed()

        # For a look by eye: BERTKIT_SCREENSHOT_DIR=/some/dir keeps it.
        shot = Path(os.environ.get("BERTKIT_SCREENSHOT_DIR", tmp_path)) / "bertkit-page.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000

        # An error from the service is shown, not swallowed.
        browser.find_element(By.ID, "text").clear()
        browser.find_element(By.ID, "text").send_keys("   ")
        browser.find_element(By.ID, "submit").click()
        wait.until(lambda b: b.find_element(By.ID, "error").text)
        assert browser.find_element(By.ID, "error").text == "texts[0]: the text is empty; every item needs some text"
