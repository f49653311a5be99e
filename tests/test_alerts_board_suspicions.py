"""The board's "suspected falls (wearer prompted)" section: apart from the alerts, never an alert
row (rendered from the console's own template with its translator)."""

from __future__ import annotations

from pathlib import Path

import jinja2

from console.data import SuspectedFall
from console.i18n import Translator

TEMPLATES = Path(__file__).parent.parent / "console" / "templates"


def render(lang: str, suspicions: list[SuspectedFall]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    context = {
        "t": Translator(lang),
        "lang": lang,
        "langs": ("zh-CN", "en"),
        "csrf": "-",
        "user": None,
        "flash": None,
        "i18n_json": "{}",
        "path": "/",
        "alerts": [],
        "suspicions": suspicions,
        "page": "board",
    }
    return env.get_template("board.html").render(**context)


def test_suspected_falls_are_listed_apart_from_alerts() -> None:
    falls = [
        SuspectedFall("sus-a", "R004", "赵凤英", "Q004", "Asia/Shanghai", 0.0, 65.0, "open", ""),
        SuspectedFall(
            "sus-b", "R004", "赵凤英", "Q004", "Asia/Shanghai", 0.0, 5.0, "cancelled", ""
        ),
    ]
    page = render("zh-CN", falls)
    board_end = page.index('<section class="suspicions"')
    assert 'data-suspicion="sus-a"' not in page[:board_end]  # not among the alert rows
    section = page[board_end : page.index("</section>", board_end)]
    assert "疑似跌倒（已询问老人，未通知他人）" in section
    assert (
        '<li data-suspicion="sus-a"><span class="tag sus-open">正在询问老人</span> 赵凤英 · Q004 · 1分05秒</li>'
        in section
    )
    assert 'data-suspicion="sus-b"><span class="tag sus-cancelled">老人表示无事</span>' in section
    assert "Suspected falls (wearer prompted, nobody notified)" in render("en", falls)
    assert 'class="suspicions"' not in render("en", [])  # nothing suspected: no section
