"""Templates and route functions that fail: a clear page, the details in the researcher's log,
and everyone else carries on.

Over real HTTP (``tornado.testing``); the dashboard's log area in-process (the handler the
dashboard puts on protonb's logger), and once in a real kernel, where the traceback must
reach the log widget and not the output of whatever cell runs next.
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from test_server import ServerCase

try:
    from test_kernel_dashboard import kernel  # noqa: F401 - the fixture: one real kernel for this module
except pytest.skip.Exception:
    pass

from protonb import Prototype, logbook
from protonb.templating import describe_template_error


class CaptureLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(self.format(record) for record in self.records)


@contextmanager
def protonb_log() -> Iterator[CaptureLog]:
    handler = CaptureLog()
    logger = logging.getLogger("protonb")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


BROKEN = {
    "syntax.html": "<h1>Syntax</h1>\n<p>fine</p>\n{% if data['x'] %}\n<p>never closed</p>\n",
    "dashed.html": "<h1>Dashed</h1>\n<p>Hello</p>\n<p>{{ data.first-name }}</p>\n",
    "nested-dashed.html": "<h1>Nested</h1>\n{{ data.claimant.first-name }}\n",
    "missing-include.html": "<h1>Include</h1>\n\n{% include 'partials/nope.html' %}\n",
    "bad-filter.html": "<h1>Filter</h1>\n{{ data['x'] | nosuchfilter }}\n",
    "uses-layout.html": "{% extends 'layouts/broken.html' %}\n{% block content %}<p>ok</p>{% endblock %}\n",
    "layouts/broken.html": "<html>\n<body>\n{% block content %}{% endblock %}\n{{ 1 / 0 }}\n</body></html>\n",
    "escaped.html": "<h1>Escaped</h1>\n{{ data['first-name'] + 1 }} <b>bold</b>\n",
    "fine.html": "<h1>Fine</h1>\n<p>{{ data['first-name'] }}</p>\n",
    "no-claimant.html": "<h1>Sum</h1>\n{{ data['applicant']['age'] + 1 }}\n",
}


class FailureCase(ServerCase):
    def setUp(self) -> None:
        super().setUp()
        for name, text in BROKEN.items():
            path = self.root / "templates" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")


class TestTemplateErrors(FailureCase):
    def page(self, path: str) -> Any:
        with protonb_log() as log:
            answer = self.participant().get(path)
        return answer, log

    def test_a_syntax_error_names_the_template_the_line_and_a_hint(self) -> None:
        answer, log = self.page("/syntax")
        assert answer.code == 500
        assert "syntax.html" in answer.text and "line 3" in answer.text and "endif" in answer.text
        assert "closed" in answer.text  # the hint: close every {% tag %}
        assert "syntax.html line 3" in log.text

    def test_a_dashed_name_after_a_dot_gets_the_subtraction_hint(self) -> None:
        for path, name, line in (("/dashed", "dashed.html", 3), ("/nested-dashed", "nested-dashed.html", 2)):
            answer, log = self.page(path)
            assert answer.code == 500, path
            assert name in answer.text and f"line {line}" in answer.text, answer.text
            assert "subtraction" in answer.text and "data[&#39;first-name&#39;]" in answer.text, answer.text
            assert f"{name} line {line}" in log.text

    def test_a_missing_answer_used_in_a_sum_says_which_answer_and_how_to_guard_it(self) -> None:
        answer, log = self.page("/no-claimant")
        assert answer.code == 500 and "no-claimant.html" in answer.text and "line 2" in answer.text
        assert "no answer or value called &#39;applicant&#39;" in answer.text
        assert "default(" in answer.text
        assert "no answer or value called 'applicant'" in log.text  # the hint is in the log too

    def test_a_missing_include_says_which_template_is_missing(self) -> None:
        answer, _ = self.page("/missing-include")
        assert answer.code == 500
        assert "partials/nope.html" in answer.text and "missing-include.html" in answer.text
        assert "line 3" in answer.text

    def test_an_unknown_filter_names_it(self) -> None:
        answer, _ = self.page("/bad-filter")
        assert answer.code == 500 and "nosuchfilter" in answer.text and "bad-filter.html" in answer.text
        assert "Jinja2&#39;s filters" in answer.text

    def test_nunjucks_dump_is_pointed_to_tojson(self) -> None:
        (self.root / "templates" / "dump-it.html").write_text("<h1>Dump</h1>\n<pre>{{ data | dump }}</pre>\n")
        answer, _ = self.page("/dump-it")
        assert answer.code == 500 and "line 2" in answer.text and "tojson" in answer.text

    def test_an_error_in_a_layout_names_the_layout_and_its_line(self) -> None:
        answer, _ = self.page("/uses-layout")
        assert answer.code == 500
        assert "layouts/broken.html" in answer.text and "line 4" in answer.text
        assert "division by zero" in answer.text

    def test_the_error_page_escapes_what_it_quotes(self) -> None:
        answer, _ = self.page("/escaped")
        assert answer.code == 500
        assert "<b>bold</b>" not in answer.text and "&lt;b&gt;bold&lt;/b&gt;" in answer.text

    def test_answers_posted_before_a_broken_page_are_kept_and_others_carry_on(self) -> None:
        ada, bea = self.participant(), self.participant()
        with protonb_log():
            broken = ada.post("/dashed", {"first-name": "Ada"})
        assert broken.code == 500
        assert ada.data()["first-name"] == "Ada"
        assert "Ada" in ada.get("/fine").text
        assert bea.get("/fine").code == 200

    def test_fixing_the_template_shows_the_page_at_once(self) -> None:
        with protonb_log():
            assert self.participant().get("/dashed").code == 500
        from test_server import save

        save(self.root / "templates" / "dashed.html", "<h1>Dashed</h1>\n<p>{{ data['first-name'] }}</p>\n")
        assert self.participant().get("/dashed").code == 200

    def test_describe_template_error_names_what_it_can_without_a_template(self) -> None:
        problem = describe_template_error(ValueError("odd"), self.root / "templates")
        assert problem.template == "(unknown template)" and problem.message == "odd"


ROUTES = """
import sys
from protonb import Router

router = Router()

@router.route("/explode")
def explode(req):
    return {"a": 1}["missing-key-7c1"]

@router.route("/name", methods=["POST"])
def check_name(req):
    if req.session.data.get("first-name") == "boom":
        raise RuntimeError("the name check broke <script>")

@router.route("/leave")
def leave(req):
    sys.exit(3)

@router.route("/odd")
def odd(req):
    return 42
"""


class TestRouteFunctionErrors(FailureCase):
    def setUp(self) -> None:
        super().setUp()
        (self.root / "routes.py").write_text(ROUTES, encoding="utf-8")

    def test_an_exception_shows_an_error_page_and_its_traceback_goes_to_the_log(self) -> None:
        with protonb_log() as log:
            answer = self.participant().get("/explode")
        assert answer.code == 500
        assert "explode" in answer.text and "missing-key-7c1" in answer.text
        assert "Traceback" not in answer.text and "routes.py" not in answer.text
        (record,) = [r for r in log.records if r.exc_info]
        assert "explode" in record.getMessage() and "/explode" in record.getMessage()
        assert "Traceback" in log.text and "KeyError" in log.text and "routes.py" in log.text

    def test_the_error_page_escapes_the_exception(self) -> None:
        browser = self.participant()
        with protonb_log():
            answer = browser.post("/name", {"first-name": "boom"})
        assert answer.code == 500
        assert "<script>" not in answer.text and "&lt;script&gt;" in answer.text

    def test_everyone_else_carries_on_and_the_failing_participant_keeps_their_answers(self) -> None:
        ada, bea = self.participant(), self.participant()
        bea.post("/name", {"first-name": "Bea"})
        with protonb_log():
            assert ada.post("/name", {"first-name": "boom"}).code == 500
        assert bea.data()["first-name"] == "Bea"
        assert ada.data()["first-name"] == "boom"
        assert ada.post("/name", {"first-name": "Ada"}).code == 200
        assert ada.data()["first-name"] == "Ada"

    def test_sys_exit_in_a_route_function_does_not_stop_the_server(self) -> None:
        with protonb_log() as log:
            answer = self.participant().get("/leave")
        assert answer.code == 500 and "leave" in answer.text
        assert "sys.exit(3)" in answer.text and "would stop the server" in answer.text
        assert "SystemExit" in log.text
        assert self.participant().get("/fine").code == 200

    def test_a_route_function_returning_something_else_says_what_to_return(self) -> None:
        with protonb_log() as log:
            answer = self.participant().get("/odd")
        assert answer.code == 500 and "odd" in answer.text
        assert "req.redirect" in log.text

    def test_a_notebook_route_failure_is_the_same(self) -> None:
        @self.proto.route("/cell")
        def from_a_cell(req: Any) -> Any:
            raise ValueError("cell-failure-42")

        with protonb_log() as log:
            answer = self.participant().get("/cell")
        assert answer.code == 500 and "cell-failure-42" in answer.text
        assert "from_a_cell" in log.text and "Traceback" in log.text

    def test_a_routes_file_that_fails_to_load_is_logged_and_pages_still_answer(self) -> None:
        from test_server import save

        with protonb_log() as log:
            save(self.root / "routes.py", "from protonb import Router\nrouter = Router(\n")
            assert self.participant().get("/fine").code == 200
        assert "routes.py failed to load" in log.text and "SyntaxError" in log.text

    def test_an_unexpected_failure_shows_the_error_page_and_goes_to_protonbs_log(self) -> None:
        with (
            protonb_log() as log,
            mock.patch.object(self.proto.store, "set", side_effect=OSError("disk gone")),
        ):
            answer = self.participant().post("/fine", {"first-name": "Ada"})
        assert answer.code == 500
        assert "There is a problem" in answer.text and "disk gone" not in answer.text
        assert "disk gone" in log.text and "Traceback" in log.text
        assert self.participant().get("/fine").code == 200


# ---------------------------------------------------------------------- the dashboard's log area


class TestDashboardLogArea(FailureCase):
    def setUp(self) -> None:
        pytest.importorskip("anywidget")
        super().setUp()
        (self.root / "routes.py").write_text(ROUTES, encoding="utf-8")
        self.dash = self.proto.dashboard()

    def tearDown(self) -> None:
        self.dash.close()
        super().tearDown()

    def test_a_route_failure_shows_its_traceback_in_the_log_area(self) -> None:
        assert self.dash.log_view.layout.display == "none"
        self.participant().get("/explode")
        shown = "\n".join(self.dash.log_lines)
        assert "explode" in shown and "Traceback" in shown and "missing-key-7c1" in shown
        assert self.dash.log_view.layout.display == ""
        assert "missing-key-7c1" in self.dash.log_view.value

    def test_the_log_area_escapes_what_it_shows(self) -> None:
        self.participant().post("/name", {"first-name": "boom"})
        assert "<script>" not in self.dash.log_view.value and "&lt;script&gt;" in self.dash.log_view.value

    def test_a_template_error_shows_in_the_log_area(self) -> None:
        self.participant().get("/dashed")
        assert any("dashed.html line 3" in line for line in self.dash.log_lines)

    def test_with_a_dashboard_nothing_is_printed_to_stderr_even_with_no_other_handler(self) -> None:
        """In a kernel no other handler is set; stderr there is the output of whatever cell runs."""
        root = logging.getLogger()
        saved = root.handlers[:]
        root.handlers = []
        fake = mock.MagicMock()
        try:
            with mock.patch.object(sys, "stderr", fake):
                self.participant().get("/explode")
        finally:
            root.handlers = saved
        assert not fake.write.called, fake.write.call_args_list
        assert any("missing-key-7c1" in line for line in self.dash.log_lines)

    def test_problems_from_before_the_dashboard_opened_show_in_its_log_area(self) -> None:
        self.dash.close()
        self.proto._dashboard = None
        book = logbook.Logbook()
        logger = logging.getLogger("protonb")
        logger.addHandler(book)
        try:
            with mock.patch.object(logbook, "_logbook", book):
                self.participant().get("/explode")
                assert any("missing-key-7c1" in line for line in self.proto.log)
                self.dash = self.proto.dashboard()
        finally:
            logger.removeHandler(book)
        assert any("missing-key-7c1" in line for line in self.dash.log_lines)
        assert "Traceback" in self.dash.log_view.value

    def test_another_prototypes_problems_stay_out_of_this_ones_log(self) -> None:
        other_root = self.root.parent / "other-prototype"
        (other_root / "templates").mkdir(parents=True)
        other = Prototype(other_root)
        other_dash = other.dashboard()
        book = logbook.Logbook()
        logger = logging.getLogger("protonb")
        logger.addHandler(book)
        try:
            with mock.patch.object(logbook, "_logbook", book):
                self.participant().get("/explode")  # this prototype's route fails
                logging.getLogger("protonb").warning("a problem of no prototype 5e2")
                assert any("missing-key-7c1" in line for line in self.proto.log)
                assert not any("missing-key-7c1" in line for line in other.log)
                assert any("5e2" in line for line in other.log)
        finally:
            logger.removeHandler(book)
            other_dash.close()
            other.close()
        assert any("missing-key-7c1" in line for line in self.dash.log_lines)
        assert not any("missing-key-7c1" in line for line in other_dash.log_lines)
        assert any("5e2" in line for line in other_dash.log_lines)

    def test_a_closed_dashboard_stops_listening(self) -> None:
        self.dash.close()
        handlers = logging.getLogger("protonb").handlers
        assert all(getattr(h, "dashboard", None) is not self.dash for h in handlers)
        self.dash = self.proto.dashboard() if self.proto._dashboard is None else self.proto._dashboard


# ---------------------------------------------------------------------- in a real kernel


@pytest.mark.kernel
def test_in_a_kernel_a_route_traceback_reaches_the_log_widget_not_a_cell(kernel: Any, tmp_path: Path) -> None:
    k = kernel
    root = tmp_path / "proto"
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "index.html").write_text("<h1>Start</h1>")
    cell = textwrap.dedent(
        f"""
        import json, protonb
        from IPython.display import display
        proto = protonb.Prototype({str(root)!r})
        @proto.route("/boom")
        def boom(req):
            raise ZeroDivisionError("kaboom-marker-913")
        proto.start(host="127.0.0.1", show=False)
        d = proto.dashboard()
        display(d)
        print(json.dumps({{"port": proto.port, "log": d.log_view.model_id}}))
        """
    )
    info = k.run_json(cell)
    k.settle(quiet=0.2)
    mark = len(k.seen)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{info['port']}/boom", timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 500
    else:
        raise AssertionError("/boom did not fail")

    def log_update(seen: Any) -> bool:
        if seen.kind != "comm_msg" or seen.content["comm_id"] != info["log"]:
            return False
        state = seen.content["data"].get("state", {})
        return "kaboom-marker-913" in json.dumps(state)

    found = k.wait_for(log_update, since=mark)
    assert found is not None, "the traceback never reached the log widget"
    assert "Traceback" in json.dumps(found.content["data"]["state"])
    after = k.execute("print('the next cell')")
    assert after.stdout.strip() == "the next cell"
    k.settle(quiet=0.2)
    streams = [s for s in k.seen[mark:] if s.kind == "stream"]
    assert not any("kaboom-marker-913" in s.content["text"] for s in streams), streams
    k.execute("proto.close()")


@pytest.mark.kernel
def test_in_a_kernel_without_a_dashboard_a_traceback_waits_for_it_instead_of_a_cell(
    kernel: Any, tmp_path: Path
) -> None:
    k = kernel
    root = tmp_path / "quiet"
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "index.html").write_text("<h1>Start</h1>")
    info = k.run_json(
        textwrap.dedent(
            f"""
            import json, protonb
            quiet = protonb.Prototype({str(root)!r})
            @quiet.route("/boom")
            def boom(req):
                raise ZeroDivisionError("early-marker-271")
            quiet.start(host="127.0.0.1", show=False)
            print(json.dumps({{"port": quiet.port}}))
            """
        )
    )
    k.settle(quiet=0.2)
    mark = len(k.seen)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{info['port']}/boom", timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 500
    after = k.execute("print('the next cell')")
    assert after.stdout.strip() == "the next cell"
    k.settle(quiet=0.2)
    streams = [s for s in k.seen[mark:] if s.kind == "stream"]
    assert not any("early-marker-271" in s.content["text"] for s in streams), streams
    kept = k.run_json(
        "print(json.dumps([any('early-marker-271' in l for l in quiet.log),"
        " any('early-marker-271' in l for l in quiet.dashboard().log_lines)]))"
    )
    assert kept == [True, True]
    k.execute("quiet.close()")
