"""The README's benchmark figures are generated from bench/results, never typed."""

from __future__ import annotations

from bench import readme


def test_readme_figures_match_the_recorded_results() -> None:
    # Fails whenever a result file changed (or a figure was edited by hand) without
    # `python -m bench.readme` being run afterwards.
    assert readme.main(["--check"]) == 0


def test_a_block_is_rewritten_from_its_renderer() -> None:
    stale = "intro\n<!-- bench:overhead -->\nhand-typed figure\n<!-- /bench:overhead -->\nend\n"
    fresh = readme.render(stale)
    assert "hand-typed figure" not in fresh
    assert fresh.startswith("intro\n<!-- bench:overhead -->\n")
    assert fresh.endswith("<!-- /bench:overhead -->\nend\n")
    assert readme.render(fresh) == fresh


def test_an_unknown_block_is_left_alone() -> None:
    text = "<!-- bench:nothing-here -->\nkept\n<!-- /bench:nothing-here -->\n"
    assert readme.render(text) == text
