"""A Prototype's life in a notebook: started, started again, failing to start, closed.

A researcher re-runs cells, mistypes ports and hosts, and closes a Prototype then reaches for
it again. None of that may take down the link participants already have, or leave a server
answering that cannot store answers. Servers run on the test's own event loop, on real ports.
"""

from __future__ import annotations

import math
import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from test_server import Browser, ServerCase

from protonb import runner
from protonb.prototype import Prototype, PrototypeClosed
from protonb.store import StoreClosed


@contextmanager
def port_taken_by_another_program() -> Iterator[int]:
    """A port on 127.0.0.1 that something other than protonb listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def a_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nothing_listens_on(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        return client.connect_ex(("127.0.0.1", port)) != 0


class LifecycleCase(ServerCase):
    def serving_with_an_answer(self) -> tuple[Prototype, str, Browser]:
        """The folder served, with one participant who has answered."""
        proto, url = self.serve(self.root)
        browser = Browser(self, url)
        browser.post("/name", {"first-name": "Ada"})
        return proto, url, browser

    def assert_still_serving(self, proto: Prototype, url: str, browser: Browser) -> None:
        """The participants' link works, with their answers, and the folder's server is ``proto``."""
        assert proto.running
        assert proto.url is not None and proto.url.rstrip("/") == url
        assert runner.registered(str(self.root)) is proto
        assert browser.data()["first-name"] == "Ada"
        browser.post("/name", {"first-name": "Ada"})
        assert proto.sessions[0].data["first-name"] == "Ada"


class TestAFailedStartKeepsTheServerServing(LifecycleCase):
    def test_a_port_in_use_by_another_program_leaves_the_running_server_serving(self) -> None:
        proto, url, browser = self.serving_with_an_answer()
        with port_taken_by_another_program() as port:
            with pytest.raises(runner.PortInUse, match=f"Port {port} on 127.0.0.1 is in use"):
                proto.start(port=port, show=False)
        self.assert_still_serving(proto, url, browser)

    def test_a_mistyped_port_is_refused_before_the_running_server_is_touched(self) -> None:
        proto, url, browser = self.serving_with_an_answer()
        for port in ("abc", "3000", 9110.5, True):
            with pytest.raises(
                TypeError,
                match=re.escape(f"a whole number between 0 and 65535 (0 picks a free one), not {port!r}"),
            ):
                proto.start(port=port, show=False)  # type: ignore[arg-type]
        self.assert_still_serving(proto, url, browser)

    def test_a_port_out_of_range_is_refused_not_wrapped_round(self) -> None:
        """70000 would be bound as 70000 - 65536 = 4464 by the operating system."""
        proto, url, browser = self.serving_with_an_answer()
        for port in (70000, 65536, -1):
            with pytest.raises(ValueError, match=f"port must be between 0 and 65535 .*not {port}"):
                proto.start(port=port, show=False)
        self.assert_still_serving(proto, url, browser)

    def test_a_host_that_is_not_an_address_says_so_and_keeps_serving(self) -> None:
        proto, url, browser = self.serving_with_an_answer()
        for port in (None, 0):  # on the port it serves on (stopped first), and on a new one
            with pytest.raises(runner.CannotListen, match="'0.0.0.0.0': it is not an address or a name"):
                proto.start(port=port, host="0.0.0.0.0", show=False)
            self.assert_still_serving(proto, url, browser)
            with pytest.raises(
                runner.CannotListen, match="'10.9.9.9': it is not an address of this computer"
            ):
                proto.start(port=port, host="10.9.9.9", show=False)
            self.assert_still_serving(proto, url, browser)

    def test_a_host_that_is_not_text_or_empty_is_refused(self) -> None:
        proto, url, browser = self.serving_with_an_answer()
        with pytest.raises(ValueError, match="host is empty: use 127.0.0.1"):
            proto.start(host="  ", show=False)
        with pytest.raises(TypeError, match="host must be the address to listen on as text"):
            proto.start(host=None, show=False)  # type: ignore[arg-type]
        self.assert_still_serving(proto, url, browser)

    def test_a_second_prototype_of_the_folder_failing_to_start_leaves_the_first_serving(self) -> None:
        proto, url, browser = self.serving_with_an_answer()
        again = Prototype(self.root)
        self.started.append(again)
        with port_taken_by_another_program() as port:
            with pytest.raises(runner.PortInUse):
                again.start(port=port, show=False)
        with pytest.raises(runner.CannotListen):  # on the first one's port: it is stopped, then back
            again.start(host="10.9.9.9", show=False)
        assert not again.running
        self.assert_still_serving(proto, url, browser)


class TestStartingAgain(LifecycleCase):
    def test_a_new_prototype_on_the_same_port_replaces_the_running_one(self) -> None:
        proto, url, browser = self.serving_with_an_answer()
        again = Prototype(self.root)
        self.started.append(again)
        assert again.start(port=proto.port, show=False).rstrip("/") == url
        assert not proto.running
        self.assert_still_serving(again, url, browser)

    def test_moving_to_another_port_frees_the_old_one(self) -> None:
        proto, url, browser = self.serving_with_an_answer()
        old_port = proto.port
        assert old_port is not None
        new_url = proto.start(port=0, show=False).rstrip("/")
        assert new_url != url and nothing_listens_on(old_port)
        browser.base = new_url
        self.assert_still_serving(proto, new_url, browser)


class TestStoppedAndStartedAgain(LifecycleCase):
    def test_a_stopped_prototype_started_again_keeps_its_link(self) -> None:
        proto, url, browser = self.serving_with_an_answer()
        proto.stop()
        assert proto.start(show=False).rstrip("/") == url  # the participants' link works again
        self.assert_still_serving(proto, url, browser)

    def test_a_new_prototype_for_a_stopped_folder_takes_its_old_port(self) -> None:
        proto, url, browser = self.serving_with_an_answer()
        proto.close()
        again = Prototype(self.root)
        self.started.append(again)
        assert again.start(show=False).rstrip("/") == url
        self.assert_still_serving(again, url, browser)

    def test_after_a_kernel_restart_the_folder_is_served_on_its_old_port(self) -> None:
        proto, url, _ = self.serving_with_an_answer()
        proto.close()
        script = (
            "import asyncio, sys, protonb\n"
            "async def main():\n"
            "    proto = protonb.Prototype(sys.argv[1])\n"
            "    print(proto.start(show=False))\n"
            "    proto.close()\n"
            "asyncio.run(main())\n"
        )
        restarted = subprocess.run(
            [sys.executable, "-c", script, str(self.root)], capture_output=True, text=True, timeout=60
        )
        assert restarted.returncode == 0, restarted.stderr
        assert restarted.stdout.strip().rstrip("/") == url

    def test_when_its_old_port_was_taken_meanwhile_a_free_one_is_picked(self) -> None:
        proto, url, _ = self.serving_with_an_answer()
        old_port = proto.port
        proto.stop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the closed connections
            taken.bind(("127.0.0.1", old_port))
            taken.listen()
            new_url = proto.start(show=False).rstrip("/")
        assert new_url != url and proto.running


class TestTheLinkShown(LifecycleCase):
    def test_every_address_is_shown_as_an_address_that_answers(self) -> None:
        for host in ("0.0.0.0", "0", "::"):
            if host == "::" and not socket.has_ipv6:
                continue
            proto = Prototype(self.root, password="a study password")
            self.started.append(proto)
            url = proto.start(host=host, port=0, show=False)
            assert "//0:" not in url and "//0.0.0.0:" not in url and "[::]" not in url, url
            response = Browser(self, url.rstrip("/")).get("/")
            assert response.code in (200, 303), (host, url, response.code)
            proto.close()


class TestAClosedPrototype(ServerCase):
    def test_start_after_close_says_to_make_a_new_one_and_leaves_nothing_listening(self) -> None:
        self.proto.close()
        port = a_free_port()
        with pytest.raises(
            PrototypeClosed, match=r"This Prototype was closed: make a new one with protonb\.Prototype"
        ):
            self.proto.start(port=port, show=False)
        assert nothing_listens_on(port)
        assert not self.proto.running and runner.registered(str(self.root)) is None

    def test_dashboard_after_close_says_so_too(self) -> None:
        self.proto.close()
        with pytest.raises(PrototypeClosed, match="This Prototype was closed"):
            self.proto.dashboard()

    def test_its_sessions_say_the_store_was_closed(self) -> None:
        sessions = self.proto.sessions
        self.proto.close()
        self.proto.close()  # a second close does nothing
        for use in (lambda: list(sessions), lambda: len(self.proto.sessions), self.proto.sessions.to_json):
            with pytest.raises(StoreClosed, match=r"was closed \(proto\.close\(\)\): open the folder again"):
                use()

    def test_a_new_prototype_for_the_folder_serves_its_answers(self) -> None:
        proto, url = self.serve(self.root)
        Browser(self, url).post("/name", {"first-name": "Ada"})
        proto.close()
        again, _ = self.serve(self.root)
        assert again.sessions[0].data["first-name"] == "Ada"


class TestMistakesWhenOpening(ServerCase):
    def test_a_folder_that_is_not_a_path_is_named_as_such(self) -> None:
        with pytest.raises(
            TypeError, match=r"folder must be a path to a prototype folder \(a str or Path\), not int"
        ):
            Prototype(5)  # type: ignore[arg-type]

    def test_session_hours_that_are_not_a_number_of_hours_are_refused(self) -> None:
        for hours in ("3", None, True):
            with pytest.raises(TypeError, match="session_hours must be a number of hours"):
                Prototype(self.root, session_hours=hours)  # type: ignore[arg-type]
        for hours in (0, -1, math.nan, math.inf, 1e12):
            with pytest.raises(ValueError, match="session_hours must be more than 0 and at most 87600"):
                Prototype(self.root, session_hours=hours)

    def test_session_hours_as_a_whole_or_fractional_number_are_taken(self) -> None:
        for hours in (3, 0.5, 87600):
            Prototype(self.root, session_hours=hours).close()


class TestExport(ServerCase):
    def test_to_json_writes_a_file_only_its_owner_can_read(self) -> None:
        Browser(self).post("/name", {"first-name": "Ada"})
        path = self.tmp / "sessions.json"
        self.proto.sessions.to_json(str(path))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert "Ada" in path.read_text(encoding="utf-8")

    def test_to_json_over_a_readable_file_makes_it_private(self) -> None:
        Browser(self).post("/name", {"first-name": "Ada"})
        path = self.tmp / "sessions.json"
        path.write_text("an older export that is much longer than the new one " * 100, encoding="utf-8")
        path.chmod(0o644)
        self.proto.sessions.to_json(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert path.read_text(encoding="utf-8") == self.proto.sessions.to_json()
