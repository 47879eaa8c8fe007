"""report.html in a real headless Chromium (Playwright, file:// URL, offline): no console
errors, every plot renders, the table sorts, and the problem browser shows both traces with
repeated 4-grams marked. Skipped where Chromium or Playwright is not installed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import artifacts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
if CHROMIUM is None:
    pytest.skip("no chromium executable on PATH (apt-get install chromium)", allow_module_level=True)

from test_report_figures import INJECTION, LONG, LOOP, SAMPLE_KEY, VARIANTS, greedy_text, report_dir  # noqa: E402

PLOTS = ("pareto", "ctir", "tokens", "curves")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    rows, path = report_dir(tmp)
    return rows, path, tmp


@pytest.fixture
def page(browser, built):
    """The report, loaded, with console errors, page errors and every request recorded."""
    _, path, _ = built
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.set_default_timeout(60_000)
    pg.errors = []
    pg.requests = []
    pg.on("console", lambda m: pg.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.goto(path.as_uri())
    pg.wait_for_function(f"document.querySelectorAll('.plot .main-svg').length >= {len(PLOTS)}")
    yield pg
    pg.close()


def _column(page, index: int) -> list[str]:
    return page.eval_on_selector_all(
        "#summary-table tbody tr", f"rows => rows.map(r => r.cells[{index}].getAttribute('data-sort'))"
    )


def _header_index(page, name: str) -> int:
    names = page.eval_on_selector_all("#summary-table thead th", "ths => ths.map(t => t.textContent)")
    return names.index(name)


def test_page_renders_plots_without_errors_or_network(page):
    for pid in PLOTS:
        assert page.locator(f"#plot-{pid} .main-svg").count() >= 1, pid
    assert page.locator("#plot-pareto .scatterlayer .trace").count() >= 3  # 2 strategies + frontier
    assert page.locator("#plot-tokens .boxlayer .trace").count() == 2
    assert all(u.startswith(("file:", "data:", "blob:")) for u in page.requests), page.requests
    assert page.errors == []


def test_table_has_one_row_per_variant_and_strategy_and_sorts(page, built):
    rows = built[0]
    assert page.locator("#summary-table tbody tr").count() == len(rows) == 2 * len(VARIANTS)
    col = _header_index(page, "reasoning tok")
    before = _column(page, 0)
    page.click("#summary-table thead th >> text='reasoning tok'")
    up = [float(x) for x in _column(page, col)]
    assert up == sorted(up)
    page.click("#summary-table thead th >> text='reasoning tok'")
    down = [float(x) for x in _column(page, col)]
    assert down == sorted(up, reverse=True)
    assert _column(page, 0) != before
    page.click("#summary-table thead th >> text='variant'")
    assert _column(page, 0) == sorted(before)
    assert page.errors == []


def _choose(page, problem: int, variant: str, recipe: str = "greedy") -> None:
    page.select_option("#pb-recipe", recipe)
    page.select_option("#pb-variant", variant)
    page.select_option("#pb-problem", str(problem))
    page.wait_for_function(
        "([pid, v]) => document.getElementById('pb-pid').textContent.startsWith(pid)"
        " && document.querySelector('#pb-right h3') && document.querySelector('#pb-right h3').textContent === v",
        arg=[f"p{problem}", variant],
    )


def test_problem_browser_shows_both_traces_and_marks_loops(page, built):
    _choose(page, 0, "q2")
    left, right = page.locator("#pb-left"), page.locator("#pb-right")
    assert greedy_text("base", 0) in left.locator(".trace").inner_text()
    assert right.locator(".trace").inner_text().startswith(LOOP.strip()[:40])
    assert right.locator("mark").count() >= 1
    assert left.locator("mark").count() == 0
    assert "✓ correct" in left.inner_text() and "✓ correct" in right.inner_text()
    assert "finish reason" in right.inner_text() and "repetition" in right.inner_text()
    assert page.locator("#pb-gold").inner_text() == "0"
    assert "What is 0 + 0?" in page.locator("#pb-question").inner_text()

    _choose(page, 1, "q4")  # a trace over the limit: cut, with the note
    assert right.locator(".trunc").count() == 1
    assert "thinkcost export" in right.locator(".trunc").inner_text()
    assert right.locator(".trace").inner_text().strip() == LONG[:8000].strip()

    _choose(page, 2, "q4")  # model and problem text shown as text, never as markup
    assert INJECTION in page.locator("#pb-question").inner_text()
    assert INJECTION in right.locator(".trace").inner_text()
    assert page.locator("img").count() == 0 and page.locator("#pb-right b").count() == 0
    assert "✗ wrong" in right.inner_text()

    _choose(page, 1, "q2", SAMPLE_KEY)  # another recipe's sample 0
    assert right.locator(".trace").inner_text().strip() == "sample 0 of q2 on 1"

    page.select_option("#pb-recipe", "greedy")
    page.select_option("#pb-variant", "q4")
    page.check("#pb-differ")  # greedy base vs q4 verdicts differ on p2 and p5 only
    page.wait_for_function("document.getElementById('pb-count').textContent.startsWith('2 of 6')")
    visible = page.eval_on_selector_all(
        "#pb-problem option", "os => os.filter(o => !o.hidden).map(o => o.value)"
    )
    assert visible == ["2", "5"]
    page.wait_for_function("document.getElementById('pb-pid').textContent.startsWith('p2')")  # p1 hidden
    assert page.errors == []
    _screenshot(page, built[2])


def _screenshot(page, tmp: Path) -> None:
    page.uncheck("#pb-differ")
    _choose(page, 0, "q2")
    page.evaluate("window.scrollTo(0, 0)")
    shot = tmp / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    artifacts.record(shot)
    art = os.environ.get("THINKCOST_ARTIFACTS")
    if art:
        Path(art).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(art) / "report.png")
        print(f"screenshot: {Path(art) / 'report.png'}")
        artifacts.record(Path(art) / "report.png")
    assert shot.stat().st_size > 10_000
