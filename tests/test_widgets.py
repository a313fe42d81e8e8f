"""The dashboard's widget models, in-process: what the researcher sees and what the store holds.

Participants answer over real HTTP (the prototype served in ``AsyncHTTPTestCase``); the
researcher presses buttons with ``.click()`` and types into ``.value``, as the browser would
through the comm. What the table would send to the browser is captured from its ``send``.
"""

from __future__ import annotations

import html
from typing import Any

import pytest

pytest.importorskip("anywidget")

from test_researcher import DEFAULTS, PrototypeCase  # noqa: E402

from protonb.widgets import Dashboard  # noqa: E402


class DashboardCase(PrototypeCase):
    def setUp(self) -> None:
        super().setUp()
        self.dash: Dashboard = self.proto.dashboard()
        self.sent: list[dict[str, Any]] = []
        self.dash.table.send = lambda content, buffers=None: self.sent.append(content)  # type: ignore[method-assign]

    def settle(self) -> None:
        """Send what the dashboard has queued (the kernel does this 8 ms after a change)."""
        self.dash.flush()

    def rows(self) -> dict[str, dict[str, Any]]:
        return {row["id"]: row for row in self.dash.table.ordered()}

    def upserts(self) -> list[dict[str, Any]]:
        return [row for message in self.sent if message["type"] == "upsert" for row in message["rows"]]

    def pane(self) -> dict[str, str]:
        """The detail pane's answers as shown: dotted name -> text in the box."""
        return {
            ".".join(row.path): row.value.value
            for row in self.dash.detail.rows
            if row.layout.display != "none" and row.kind == "leaf"
        }

    def select(self, session_id: str) -> None:
        self.dash.table.selected = session_id

    def status(self) -> str:
        return self.dash.status.value


class TestTable(DashboardCase):
    def test_a_participants_answers_reach_the_table_as_one_small_row(self) -> None:
        ada = self.participant("Ada")
        self.settle()
        row = self.rows()[ada.session_id]
        assert row["answers"] == 1
        assert row["page"] == "/household"
        sent_rows = self.upserts()
        assert sent_rows and sent_rows[-1]["id"] == ada.session_id
        assert sent_rows[-1]["answers"] == 1

    def test_the_browser_asking_for_rows_gets_every_session_newest_first(self) -> None:
        ada = self.participant("Ada")
        bob = self.participant("Bob")
        self.settle()
        self.sent.clear()
        self.dash.table._from_browser(None, {"type": "ready"})
        (message,) = self.sent
        assert message["type"] == "rows"
        assert [row["id"] for row in message["rows"]] == [bob.session_id, ada.session_id]

    def test_a_change_to_a_nested_answer_only_still_updates_the_row(self) -> None:
        ada = self.participant("Ada")
        self.select(ada.session_id)
        self.settle()
        self.sent.clear()
        ada.post("/household", {"claimant[first-name]": "Zed"})
        self.settle()
        assert self.pane()["claimant.first-name"] == "Zed"
        assert [row["id"] for row in self.upserts()] == [ada.session_id]

    def test_search_finds_sessions_by_an_answer(self) -> None:
        ada = self.participant("Ada")
        self.participant("Bob")
        self.settle()
        self.sent.clear()
        self.dash.table._from_browser(None, {"type": "search", "q": "Ada"})
        (message,) = self.sent
        assert (message["type"], message["q"], message["ids"]) == ("matches", "Ada", [ada.session_id])

    def test_a_removed_session_leaves_the_table(self) -> None:
        ada = self.participant("Ada")
        self.settle()
        self.proto.sessions[ada.session_id].remove()
        self.settle()
        assert ada.session_id not in self.rows()
        assert {"type": "remove", "ids": [ada.session_id]} in [
            {k: v for k, v in m.items() if k != "now"} for m in self.sent
        ]


class TestDetailPane(DashboardCase):
    def test_selecting_a_row_shows_that_participants_answers_as_a_tree(self) -> None:
        ada = self.participant("Ada")
        self.participant("Bob")
        self.select(ada.session_id)
        assert self.pane() == {"claimant.first-name": "Ada", "claimant.last-name": "", "service": "Help"}
        assert ada.session_id[:8] in self.dash.detail.header.value

    def test_editing_an_answer_and_saving_stores_it_and_the_participant_sees_it(self) -> None:
        ada = self.participant("Ada")
        self.select(ada.session_id)
        row = next(r for r in self.dash.detail.rows if r.path == ("claimant", "first-name"))
        row.value.value = "Grace"
        self.dash.detail.save.click()
        assert self.proto.sessions[ada.session_id].get("claimant.first-name") == "Grace"
        assert ada.data()["claimant"]["first-name"] == "Grace"
        assert "Saved 1 answer" in self.status()

    def test_an_unsaved_edit_survives_a_participant_answering_meanwhile(self) -> None:
        ada = self.participant("Ada")
        self.select(ada.session_id)
        row = next(r for r in self.dash.detail.rows if r.path == ("claimant", "last-name"))
        row.value.value = "Lovelace"
        ada.post("/household", {"claimant[first-name]": "Ada B"})
        self.settle()
        assert self.pane()["claimant.first-name"] == "Ada B"
        assert self.pane()["claimant.last-name"] == "Lovelace"
        self.dash.detail.save.click()
        stored = self.proto.sessions[ada.session_id].data
        assert stored["claimant"] == {"first-name": "Ada B", "last-name": "Lovelace"}

    def test_saving_with_nothing_changed_says_so(self) -> None:
        ada = self.participant("Ada")
        self.select(ada.session_id)
        self.dash.detail.save.click()
        assert "Nothing to save" in self.status()

    def test_a_number_answer_refuses_text_and_keeps_the_stored_value(self) -> None:
        ada = self.participant("Ada")
        self.proto.sessions[ada.session_id].set("age", 41)
        self.select(ada.session_id)
        row = next(r for r in self.dash.detail.rows if r.path == ("age",))
        row.value.value = "forty"
        self.dash.detail.save.click()
        assert "is a number" in self.status()
        assert self.proto.sessions[ada.session_id].get("age") == 41

    def test_adding_and_deleting_an_answer(self) -> None:
        ada = self.participant("Ada")
        self.select(ada.session_id)
        detail = self.dash.detail
        detail.new_path.value = "partner.first-name"
        detail.new_value.value = "William"
        detail.add.click()
        assert ada.data()["partner"] == {"first-name": "William"}
        row = next(r for r in detail.rows if r.path == ("partner", "first-name"))
        row.remove.click()
        assert ada.data()["partner"] == {}
        assert "Deleted partner.first-name" in self.status()

    def test_adding_without_a_name_is_an_error_in_the_status_line(self) -> None:
        ada = self.participant("Ada")
        self.select(ada.session_id)
        self.dash.detail.new_value.value = "x"
        self.dash.detail.add.click()
        assert "Give the answer a name" in self.status()
        assert self.proto.sessions[ada.session_id].answers == 1

    def test_a_label_names_the_session_in_table_and_api(self) -> None:
        ada = self.participant("Ada")
        self.select(ada.session_id)
        self.dash.detail.label_text.value = "P3"
        self.dash.detail.set_label.click()
        self.settle()
        assert self.proto.sessions["P3"].id == ada.session_id
        assert self.rows()[ada.session_id]["label"] == "P3"

    def test_a_label_another_session_holds_is_an_error_in_the_status_line(self) -> None:
        ada, bob = self.participant("Ada"), self.participant("Bob")
        self.proto.sessions[ada.session_id].label("P7")
        self.select(bob.session_id)
        self.dash.detail.label_text.value = "P7"
        self.dash.detail.set_label.click()
        shown = html.unescape(self.status())
        assert f"'P7' is already the label of session {ada.session_id[:8]}: clear that label first" in shown
        assert self.proto.sessions["P7"].id == ada.session_id
        assert self.proto.sessions[bob.session_id].label == ""

    def test_clear_asks_first_and_then_empties_the_participants_pages(self) -> None:
        ada = self.participant("Ada")
        self.select(ada.session_id)
        detail = self.dash.detail
        detail.clear.click()
        assert detail.confirm_bar.layout.display != "none"
        assert self.proto.sessions[ada.session_id].answers == 1, "nothing is cleared before Yes"
        detail.confirm_no.click()
        assert self.proto.sessions[ada.session_id].answers == 1
        detail.clear.click()
        detail.confirm_yes.click()
        assert ada.data() == DEFAULTS
        assert "Ada" not in ada.get("/household").body.decode()

    def test_remove_asks_then_the_participants_next_page_starts_afresh(self) -> None:
        ada = self.participant("Ada")
        old = ada.session_id
        self.select(old)
        self.dash.detail.remove.click()
        self.dash.detail.confirm_yes.click()
        self.settle()
        assert old not in self.rows()
        assert self.dash.detail.session_id == ""
        assert ada.data() == DEFAULTS

    def test_a_session_removed_elsewhere_while_shown_empties_the_pane_with_a_note(self) -> None:
        ada = self.participant("Ada")
        self.select(ada.session_id)
        self.proto.sessions[ada.session_id].remove()
        self.settle()
        assert self.dash.detail.session_id == ""
        assert self.pane() == {}
        assert "was removed" in self.status()

    def test_participant_text_is_escaped_in_every_html_widget(self) -> None:
        ada = self.participant("<img src=x onerror=alert(1)>")
        self.proto.sessions[ada.session_id].set("<b>key</b>", "v")
        self.proto.sessions[ada.session_id].label("<script>x</script>")
        self.select(ada.session_id)
        self.settle()
        html_values = [self.dash.detail.header.value, self.dash.status.value, self.dash.heading.value]
        html_values += [row.name.value for row in self.dash.detail.rows]
        for value in html_values:
            assert "<img" not in value and "<script" not in value and "<b>key" not in value


class TestClearAll(DashboardCase):
    def test_clear_all_asks_then_clears_every_session(self) -> None:
        ada, bob = self.participant("Ada"), self.participant("Bob")
        self.settle()
        self.dash.clear_all.click()
        assert "all 2 sessions" in self.dash.confirm_text.value
        assert self.proto.sessions[ada.session_id].answers == 1
        self.dash.confirm_yes.click()
        assert ada.data() == DEFAULTS and bob.data() == DEFAULTS
        assert "Cleared the answers of 2" in self.status()

    def test_clear_all_with_no_sessions_says_so(self) -> None:
        self.dash.clear_all.click()
        assert self.dash.confirm_bar.layout.display == "none"
        assert "no sessions" in self.status()


class TestLongRun(DashboardCase):
    def test_many_submissions_make_no_new_widget_models(self) -> None:
        import ipywidgets

        ada = self.participant("Ada")
        self.select(ada.session_id)
        self.settle()
        before = len(ipywidgets.Widget.widgets)
        for n in range(30):
            ada.post("/household", {"claimant[first-name]": f"Ada {n}"})
            self.settle()
        assert len(ipywidgets.Widget.widgets) == before
        assert self.pane()["claimant.first-name"] == "Ada 29"


class TestRetired(DashboardCase):
    def test_a_dashboard_whose_prototype_was_closed_says_so_instead_of_going_blank(self) -> None:
        from protonb import Prototype

        other = Prototype(self.root)
        dash = other.dashboard()
        table = dash.table
        other.close()  # as when the start cell is run again: the old Prototype is closed
        (note,) = dash.children
        assert "has stopped" in note.value and "proto.dashboard()" in note.value
        assert table.comm is None  # the old table's model is closed
        ada = self.participant("Ada")  # and it no longer follows the sessions
        assert dash.children == (note,) and ada.session_id not in table.rows
        dash.close()
        assert note.comm is None and dash.comm is None
