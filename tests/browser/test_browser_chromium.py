"""The browser in a real headless Chromium: the overview shows each task, a search finds a
template by a word, the query form returns hits and the prompt, and hostile template text runs
nothing while it reads as text.

Skipped where Chromium is absent, unless ``CI`` is set: there its absence fails the test.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

from benchmarks.chromium import chromium, click_and_wait, missing

from conftest import HOSTILE_WORD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def driver():
    why = missing()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and headless Chromium cannot run: {why}")
        pytest.skip(why)
    with chromium() as web:
        yield web


def _text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def test_the_overview_shows_each_task(driver, browser_url, hostile_engine) -> None:
    driver.get(browser_url + "/")
    table = _text(driver, "tasks")
    for task in hostile_engine.index.manifest.task_counts:
        assert task in table


def test_a_search_finds_a_template_by_a_word(driver, browser_url, hostile_index) -> None:
    from selenium.webdriver.common.by import By

    driver.get(browser_url + "/templates")
    box = driver.find_element(By.ID, "search")
    box.send_keys(HOSTILE_WORD)
    click_and_wait(driver, "search-button")
    assert driver.current_url.endswith(f"q={HOSTILE_WORD}&task=&sort=&order=")
    assert hostile_index[1].id in _text(driver, "templates")
    assert _text(driver, "count").startswith("1 templates")


def test_the_query_form_returns_hits_and_the_prompt(driver, browser_url) -> None:
    from selenium.webdriver.common.by import By

    driver.get(browser_url + "/query")
    driver.find_element(By.ID, "q").send_keys("How many apples are left after giving some away?")
    k = driver.find_element(By.ID, "k")
    k.clear()
    k.send_keys("2")
    click_and_wait(driver, "ask")
    hits = driver.find_elements(By.CSS_SELECTOR, "#hits tr")
    assert len(hits) == 3  # the header and two hits
    prompt = _text(driver, "prompt")
    assert "Question: How many apples are left after giving some away?" in prompt
    assert prompt.startswith("Below are thought templates")
    assert "Predicted task" in _text(driver, "predicted")


@pytest.mark.parametrize("page", ["template", "search", "query"])
def test_hostile_text_executes_nothing(driver, browser_url, hostile_index, page) -> None:
    hostile = hostile_index[1]
    url = {
        "template": f"/templates/{hostile.id}",
        "search": f"/templates?q={HOSTILE_WORD}",
        "query": f"/query?q={quote(hostile.source_query)}&k=5",
    }[page]
    driver.get(browser_url + url)
    assert driver.execute_script("return window.__pwned === undefined")
    assert "pwned" not in driver.title
    body = _text(
        driver, "text" if page == "template" else ("templates" if page == "search" else "hits")
    )
    assert "<script>window.__pwned = 1</script>" in body or "<script>window.__pwned" in body
    if page == "template":
        assert "<img src=x onerror=" in body
