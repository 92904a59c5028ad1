"""Intent routing: tools only when asked, in English and Russian (and a little German)."""

import pytest

from app.core.chat.intent import route

WEB = {
    "search the web for python 3.13 release notes": "python 3.13 release notes",
    "Search the internet for the latest llama.cpp version": "the latest llama.cpp version",
    "can you look up on the web how to install PySide6?": "how to install PySide6",
    "google rust borrow checker": "rust borrow checker",
    "find online: numpy 2 migration guide": "numpy 2 migration guide",
    "найди в интернете последнюю версию Python": "последнюю версию Python",
    "поищи в сети документацию по asyncio": "документацию по asyncio",
    "загугли ошибку ModuleNotFoundError": "ошибку ModuleNotFoundError",
    "что пишут в интернете о Python 3.14?": "Python 3.14",
    "Пожалуйста, найди в интернете как настроить nftables": "как настроить nftables",
    "можешь поискать в интернете про PEP 703": "PEP 703",
    "suche im Internet nach Python 3.13": "Python 3.13",
}
CHAT = [
    "how do I search a list in Python?",
    "как найти элемент в списке?",
    "find the bug in this function",
    "найди ошибку в этом коде",
    "write a web server in flask",
    "how do I check internet connectivity in python",
    "напиши функцию поиска в интернете",
    "/unknown thing",
    "what is a web socket?",
    "объясни, как работает поиск в ширину",
]


@pytest.mark.parametrize("text", sorted(WEB))
def test_web_requests_route_to_the_web_tool(text):
    intent = route(text)
    assert (intent.kind, intent.text) == ("web", WEB[text])


@pytest.mark.parametrize("text", CHAT)
def test_questions_about_searching_stay_questions(text):
    assert route(text).kind == "chat"


@pytest.mark.parametrize("text, kind, rest", [
    ("/search llama.cpp lora", "search", "llama.cpp lora"),
    ("/web how to use ddgs", "web", "how to use ddgs"),
    ("/fix", "fix", ""),
    ("  /FIX the tests  ", "fix", "the tests"),
    ("/code add a docstring", "code", "add a docstring"),
])
def test_commands(text, kind, rest):
    assert route(text) == type(route(text))(kind, rest)
