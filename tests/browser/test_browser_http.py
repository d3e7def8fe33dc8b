"""The browser's HTTP layer without a browser: pages, escaping, paging bounds, bad input and
auth, through Starlette's TestClient."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.retriever.serving.access import AccessTable
from thoughtbank.retriever.serving.browser.app import TOKEN_COOKIE, Shelf, create_app
from thoughtbank.retriever.serving.browser.catalog import NEIGHBOURS
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.schema import OutcomeRecord

from conftest import HOSTILE_TEXT, HOSTILE_WORD, unscanned_namespaces


@pytest.fixture(scope="module")
def client(hostile_engine: RetrievalEngine) -> TestClient:
    return TestClient(create_app(Shelf(lambda: {"default": hostile_engine})))


def test_the_overview_names_every_task_and_the_version(client, hostile_engine) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert hostile_engine.version in page.text
    for task, count in hostile_engine.index.manifest.task_counts.items():
        assert f">{task}</a>" in page.text and f">{count}<" in page.text


def test_a_search_finds_a_template_by_a_word_of_its_text(client, hostile_index) -> None:
    page = client.get(f"/templates?q={HOSTILE_WORD.upper()}")
    assert page.status_code == 200
    assert hostile_index[1].id in page.text
    assert ">1 templates" in page.text


def test_template_text_is_escaped_everywhere(client, hostile_index) -> None:
    hostile = hostile_index[1]
    for url in (f"/templates?q={HOSTILE_WORD}", f"/templates/{hostile.id}", "/templates"):
        html = client.get(url + ("&per_page=500" if "?" in url else "?per_page=500")).text
        assert "<script>window" not in html and "<img src=x" not in html
    html = client.get(f"/templates/{hostile.id}").text
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html
    assert HOSTILE_TEXT.splitlines()[2] not in html


def test_pages_forbid_scripts_and_referers(client) -> None:
    headers = client.get("/").headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "script-src" not in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["server-timing"].startswith("app;dur=")


def test_the_list_pages_and_filters(client, hostile_engine) -> None:
    total = hostile_engine.size
    first = client.get("/templates?per_page=10&sort=length&order=desc")
    assert first.status_code == 200 and f">{total} templates; 1–10 shown" in first.text
    last_page = -(-total // 10)
    last = client.get(f"/templates?per_page=10&page={last_page}")
    assert last.status_code == 200 and 'id="next"' not in last.text
    task = next(iter(hostile_engine.index.manifest.task_counts))
    filtered = client.get(f"/templates?task={task}&per_page=500")
    count = hostile_engine.index.manifest.task_counts[task]
    assert f">{count} templates" in filtered.text


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/templates?page=0", 400, "page must be in"),
        ("/templates?page=abc", 400, "page must be an integer"),
        ("/templates?page=9999", 404, "past the last page"),
        ("/templates?per_page=100000", 400, "per_page must be in"),
        ("/templates?task=nope", 400, "unknown task"),
        ("/templates?sort=uses", 400, "unknown sort"),  # no outcomes yet
        ("/templates?order=sideways", 400, "order must be asc or desc"),
        ("/templates/0000000000000000", 404, "no template with id"),
        ("/query?q=apples&k=0", 400, "k must be between 1 and 100"),
        ("/query?q=apples&k=abc", 400, "k must be an integer"),
        ("/query?q=apples&diversity=2", 400, "diversity"),
        ("/query?q=apples&min_score=nan", 400, "min_score must be a finite number"),
        ("/query?q=apples&budget=-1", 400, "budget must be"),
        ("/?namespace=other", 404, "namespace"),
    ],
)
def test_bad_input_gets_a_clear_4xx(client, url: str, status: int, says: str) -> None:
    page = client.get(url)
    assert page.status_code == status, page.text
    assert says in page.text


def test_pages_are_read_only(client) -> None:
    assert client.post("/templates").status_code == 405


def test_the_query_page_shows_hits_the_predicted_task_and_the_prompt(client) -> None:
    page = client.get("/query?q=How many apples are left after giving some away?&k=2")
    assert page.status_code == 200
    assert 'id="hits"' in page.text and page.text.count('<td class="num">') >= 2
    assert "Predicted task: <strong>" in page.text and "(confidence " in page.text
    assert "Question: How many apples are left after giving some away?" in page.text


def test_a_token_budget_keeps_hits_out_of_the_prompt(client) -> None:
    page = client.get("/query?q=How many apples are left?&k=2&budget=1&task=gsm8k")
    assert page.status_code == 200 and "over budget" in page.text


def test_the_template_page_shows_provenance_and_neighbours(client, hostile_index) -> None:
    hostile = hostile_index[1]
    page = client.get(f"/templates/{hostile.id}")
    assert page.status_code == 200
    assert hostile.source_models[0] in page.text
    assert '<span class="flag">leakage</span>' in page.text
    nearest = page.text.split('id="neighbours"')[1]
    assert nearest.count('href="/templates/') == NEIGHBOURS
    assert hostile.id not in nearest.split("Try its source query")[0]


def test_outcomes_add_the_uses_and_lift_sorts(hostile_index, embedder, tmp_path: Path) -> None:
    import shutil

    index_dir = tmp_path / "index"
    shutil.copytree(hostile_index[0], index_dir)
    engine = RetrievalEngine.open(index_dir, embedder)
    client = TestClient(create_app(Shelf(lambda: {"default": engine})))
    assert "lift" not in client.get("/templates").text.split('id="sort"')[1].split("</select>")[0]
    hostile = hostile_index[1]
    with OutcomeStore(index_dir) as store:
        store.record(
            [OutcomeRecord(f"o{n}", (hostile.id,), 1.0, baseline_score=0.0) for n in range(3)]
        )
    page = client.get("/templates?sort=uses&per_page=1")
    assert page.status_code == 200 and hostile.id in page.text
    assert client.get("/templates?sort=lift&per_page=1").text.count(hostile.id) >= 1


def _tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.toml"
    digest = hashlib.sha256(b"beta-secret").hexdigest()
    path.write_text(
        '[[token]]\ntoken = "alpha-secret"\nnamespaces = ["alpha"]\n'
        f'[[token]]\nsha256 = "{digest}"\nnamespaces = ["beta"]\n'
    )
    return path


@pytest.fixture
def guarded(hostile_engine: RetrievalEngine, tmp_path: Path) -> TestClient:
    access = AccessTable.load(None, _tokens_file(tmp_path))
    shelf = Shelf(lambda: {"alpha": hostile_engine, "beta": hostile_engine}, lambda: access)
    return TestClient(create_app(shelf), follow_redirects=False)


def test_auth_needs_a_token_and_keeps_to_its_namespaces(guarded: TestClient) -> None:
    missing = guarded.get("/?namespace=alpha")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert guarded.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    alpha = {"Authorization": "Bearer alpha-secret"}
    own = guarded.get("/", headers=alpha)  # the only namespace it reads is the default
    assert own.status_code == 200 and "alpha ·" in own.text
    assert guarded.get("/?namespace=beta", headers=alpha).status_code == 403
    assert guarded.get("/templates?namespace=gamma", headers=alpha).status_code == 403


def test_a_caller_reading_several_namespaces_is_asked_to_name_one() -> None:
    client = TestClient(create_app(Shelf(lambda: {"alpha": None, "beta": None})))
    page = client.get("/templates")
    assert page.status_code == 400 and "?namespace=NAME" in page.text and "alpha, beta" in page.text
    assert client.get("/?namespace=alpha").status_code == 503  # still loading


def test_before_a_servers_first_scan_a_page_says_retry_not_missing(tmp_path: Path) -> None:
    namespaces = unscanned_namespaces(tmp_path, None)
    client = TestClient(create_app(Shelf(lambda: {}, not_held=namespaces.not_held)))
    page = client.get("/templates")
    assert page.status_code == 503 and "no index is loaded yet" in page.text
    assert client.get("/?namespace=beta").status_code == 404  # --index serves only the default


def test_a_token_in_the_url_becomes_a_strict_http_only_cookie(guarded: TestClient) -> None:
    exchanged = guarded.get("/templates?q=apples&token=beta-secret")
    assert exchanged.status_code == 303
    assert exchanged.headers["location"] == "/templates?q=apples"
    cookie = exchanged.headers["set-cookie"]
    assert f"{TOKEN_COOKIE}=beta-secret" in cookie
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    page = guarded.get("/templates?q=apples")  # the client keeps the cookie
    assert page.status_code == 200 and "beta ·" in page.text
    assert guarded.get("/?token=wrong").status_code == 401
