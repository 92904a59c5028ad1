"""What the user asked for: a plain question, or one of the tools.

Tools run only when the user asks: a ``/``-command, or a sentence that plainly asks to look
something up on the web, in English or another language. The phrases are matched as whole
requests (a verb of searching together with the web/internet, or "google X"), so questions
*about* searching ("how do I search a list in Python?", "как найти элемент в списке?") stay
plain questions. The system this project replaces routed Russian requests wrongly; the tests
hold a table of phrasings in both languages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMMANDS = ("search", "web", "code", "fix", "run", "remember", "offline", "online")


@dataclass(frozen=True)
class Intent:
    kind: str   # "chat", "search" (list results), "web" (search, read, answer), "code", "fix", "run",
    #             "remember" (store a standing rule), "offline"/"online" (the toolbar's Offline toggle)
    text: str   # the request without the command word


# "the web / internet / online", in the languages we route.
_WEB = (r"(?:the\s+)?(?:web|internet|net\b|online)|"
        r"интернете?|сети|вебе?|онлайн|гугле|"
        r"(?:im\s+)?(?:internet|netz|web)|"           # de
        r"(?:sur\s+)?(?:internet|le\s+web|la\s+toile)|"  # fr
        r"(?:en\s+)?(?:internet|la\s+web|línea)")       # es
_SEARCH_VERB = (r"search|look\s+up|find|check|google|browse|"
                r"найди|найти|поищи|поискать|ищи|искать|посмотри|глянь|проверь|загугли|погугли|"
                r"such[e]?|finde|schau|recherchier[e]?|"
                r"cherche[rz]?|trouve[rz]?|recherche[rz]?|"
                r"busca[r]?|encuentra|averigua")
_PATTERNS = [
    # "search the web for X", "find on the internet X", "найди в интернете X", "поищи в сети X"
    re.compile(rf"^\s*(?:please\s+|пожалуйста,?\s+|bitte\s+|s'il te plaît\s+|por favor,?\s+)?"
               rf"(?:can you\s+|could you\s+|можешь\s+|можете\s+)?"
               rf"(?:{_SEARCH_VERB})\b.{{0,40}}?\b(?:in|on|at|в|во|на|im|sur|en|auf)?\s*(?:{_WEB})\b[\s:,-]*(?:for|about|о|об|про|nach|über|pour|sur|sobre|de)?\s*(?P<q>.+)$",
               re.I | re.S),
    # "google X", "загугли X", "погугли X"
    re.compile(r"^\s*(?:google|загугли|погугли|гугли)\s+(?P<q>.+)$", re.I | re.S),
    # "what does the internet say about X", "что пишут в интернете о X"
    re.compile(r"^\s*(?:what\s+does\s+the\s+(?:web|internet)\s+say\s+about|"
               r"что\s+(?:пишут|говорят)\s+в\s+(?:интернете|сети)\s+(?:о|об|про))\s+(?P<q>.+)$", re.I | re.S),
]
_COMMAND = re.compile(r"^\s*/(?P<cmd>[a-z]+)\b\s*(?P<rest>.*)$", re.I | re.S)


def route(text: str) -> Intent:
    """The intent of one chat message (commands first, then web requests, else chat)."""
    m = _COMMAND.match(text)
    if m and m["cmd"].lower() in COMMANDS:
        return Intent(m["cmd"].lower(), m["rest"].strip())
    for pattern in _PATTERNS:
        m = pattern.match(text)
        if m and m["q"].strip(" ?.!"):
            return Intent("web", m["q"].strip().rstrip("?.!").strip())
    return Intent("chat", text.strip())


def network_note(offline: bool, was_offline: bool) -> str:
    """What ``/offline`` or ``/online`` changed, in the chat's words."""
    if offline:
        if was_offline:
            return "Offline mode was already on: nothing changed. The Network panel shows the firewall's state."
        return ("Offline mode is now on: the app and every program it starts are cut off from the network "
                "(the app's own guard at once, the OS firewall in a moment; see the Network panel). "
                "Web search and downloads are refused until you turn it off.")
    if not was_offline:
        return "Offline mode was already off: nothing changed."
    return ("Offline mode is now off: web search, downloads and the review director may connect when you ask "
            "them to, and nothing else. Every connection is listed in the Network panel.")
