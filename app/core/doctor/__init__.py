"""The system check (Help → System check, ``python -m app doctor``): each part of the app that
can break on a user's machine, with its status and, when it is not OK, what to do.

``run_checks`` gives a list of :class:`Check`; ``format_report`` / ``to_json`` turn it into text
or JSON with secrets scrubbed; ``exit_code`` is 0 unless a check failed. No Qt here.
"""

from app.core.doctor.check import FAIL, OK, WARN, Check
from app.core.doctor.network import FirewallView, cli_firewall, window_firewall
from app.core.doctor.report import exit_code, format_report, scrub, to_json
from app.core.doctor.runner import run_checks

__all__ = ["Check", "OK", "WARN", "FAIL", "FirewallView", "cli_firewall", "window_firewall", "run_checks",
           "format_report", "to_json", "exit_code", "scrub"]
