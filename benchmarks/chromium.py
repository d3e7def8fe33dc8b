"""Debian's chromium and chromedriver, driven by Selenium (no Selenium Manager download): for
the browser tests and the benchmark's screenshots."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
INSTALL_HINT = "apt-get install -y chromium chromium-driver (make test does this)"


def missing() -> str | None:
    """Why no headless Chromium can run here, or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is absent: {INSTALL_HINT}"
    return None


# Seconds a page may take to load after a click.
LOAD_TIMEOUT_S = 30


def click_and_wait(driver: Any, element_id: str) -> None:
    """Click ``element_id`` and wait for the page it submits to replace this one (a click
    returns before a form's navigation ends)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, element_id).click()
    WebDriverWait(driver, LOAD_TIMEOUT_S).until(expected_conditions.staleness_of(page))


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile, quit and removed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="thoughtbank-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # Selenium Manager would look for a driver online; the path given here is the one used.
    os.environ["SE_OFFLINE"] = "true"
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
