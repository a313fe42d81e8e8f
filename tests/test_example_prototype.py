"""The example prototype at the repository root, used over real HTTP as a participant would.

Each test copies the example into a temporary folder and serves it with protonb, so no
test writes into the repository. ``Browser`` keeps one participant's cookie between
requests and follows redirects itself, the way a browser does.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path

import tornado.testing

import protonb.server
from protonb.prototype import Prototype

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("templates", "public", "routes.py", "session-data-defaults.json")

#: Every page of the example, in the order of the journey.
PAGES = (
    "/",
    "/name",
    "/over-18",
    "/household",
    "/contact",
    "/dob",
    "/check-answers",
    "/confirmation",
    "/ineligible",
)

TRICKY_NAME = "O'Neil <b>"


# ---------------------------------------------------------------------- reading pages


class Page(HTMLParser):
    """One HTML page, read into what the tests look at: headings, inputs, labels, links."""

    VOID = {"input", "br", "img", "meta", "link", "hr", "area", "base", "col", "source", "wbr"}

    def __init__(self, status: int, url: str, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.status = status
        self.url = url
        self.text = text
        self.lang = ""
        self.h1s: list[str] = []
        self.inputs: list[dict[str, str]] = []
        self.label_fors: list[str] = []
        self.addresses: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.form_actions: list[str] = []
        self.by_id: dict[str, str] = {}
        # Open elements, each with the text read inside it so far.
        self._open: list[tuple[str, dict[str, str], list[str]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.lang = found.get("lang", "")
        elif tag == "input":
            found["_in_fieldset_with_legend"] = "yes" if self._in_fieldset_with_legend() else ""
            self.inputs.append(found)
        elif tag == "label" and "for" in found:
            self.label_fors.append(found["for"])
        elif tag == "form" and found.get("method", "").lower() == "post":
            self.form_actions.append(found.get("action", self.url))
        elif tag == "legend":
            fieldsets = [attrs for open_tag, attrs, _ in self._open if open_tag == "fieldset"]
            if fieldsets:
                fieldsets[-1]["_legend"] = "yes"
        self.addresses += [found[a] for a in ("href", "action", "src") if a in found]
        if tag not in self.VOID:
            self._open.append((tag, found, []))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID or tag not in (open_tag for open_tag, _, _ in self._open):
            return
        while self._open:
            open_tag, found, pieces = self._open.pop()
            words = " ".join("".join(pieces).split())
            if open_tag == "h1":
                self.h1s.append(words)
            if open_tag == "a" and "href" in found:
                self.links.append((words, found["href"]))
            if "id" in found:
                self.by_id[found["id"]] = words
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, _, pieces in self._open:
            pieces.append(data)

    def _in_fieldset_with_legend(self) -> bool:
        return any(tag == "fieldset" and attrs.get("_legend") for tag, attrs, _ in self._open)

    # what tests ask

    def shown(self, element_id: str) -> str:
        """The text inside the element with this id, spaces squeezed."""
        assert element_id in self.by_id, f"{self.url} has no element with id={element_id!r}"
        return self.by_id[element_id]

    def value_of(self, name: str) -> str:
        """The pre-filled value of the text input called ``name``."""
        for found in self.inputs:
            if found.get("name") == name and found.get("type", "text") == "text":
                return found.get("value", "")
        raise AssertionError(f"{self.url} has no text input called {name!r}")

    def ticked(self, name: str) -> list[str]:
        """The values of the ticked radios or checkboxes called ``name``."""
        return [
            found.get("value", "")
            for found in self.inputs
            if found.get("name") == name and "checked" in found
        ]


class Browser:
    """One participant: keeps their session cookie and follows redirects."""

    def __init__(self, test: tornado.testing.AsyncHTTPTestCase) -> None:
        self.test = test
        self.cookies: dict[str, str] = {}
        self.redirects: list[str] = []
        self.page: Page | None = None
        self.sent: list[tuple[str, str]] = []

    def get(self, path: str) -> Page:
        return self._request("GET", path)

    def post(self, path: str, fields: list[tuple[str, str]] | None = None) -> Page:
        """Send exactly these fields to ``path``."""
        self.sent = list(fields or [])
        return self._request("POST", path, urllib.parse.urlencode(self.sent))

    def click(self, text: str) -> Page:
        """Follow the link on the current page whose text starts with ``text``."""
        hrefs = [href for words, href in self.page.links if words.startswith(text)]
        assert hrefs, f"{self.page.url} has no link {text!r}"
        return self.get(hrefs[0])

    def submit(self, answers: dict[str, str | list[str]] | None = None) -> Page:
        """Fill in the form on the current page and press its button, as a browser would.

        Text inputs not named in ``answers`` keep what they show; a radio or checkbox is
        sent when its value is the answer (or in the list of answers) for its name; hidden
        inputs are always sent. Fields go in the order they are on the page.
        """
        answers = answers or {}
        page = self.page
        names = {found.get("name") for found in page.inputs}
        assert set(answers) <= names, f"{page.url} has no inputs called {set(answers) - names}"
        assert len(page.form_actions) == 1, f"{page.url} has {len(page.form_actions)} forms"
        fields = []
        for found in page.inputs:
            name, kind, value = found.get("name", ""), found.get("type", "text"), found.get("value", "")
            if kind == "hidden":
                fields.append((name, value))
            elif kind in ("radio", "checkbox"):
                chosen = answers.get(name, [value] if "checked" in found else [])
                if value in ([chosen] if isinstance(chosen, str) else chosen):
                    fields.append((name, value))
            elif name:
                answer = answers.get(name, value)
                assert isinstance(answer, str), f"{name} takes one answer"
                fields.append((name, answer))
        return self.post(page.form_actions[0], fields)

    def _request(self, method: str, path: str, body: str | None = None) -> Page:
        self.redirects = []
        for _ in range(10):
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            response = self.test.fetch(
                path, method=method, body=body, headers=headers, follow_redirects=False, raise_error=False
            )
            for header in response.headers.get_list("Set-Cookie"):
                jar = SimpleCookie()
                jar.load(header)
                for name, morsel in jar.items():
                    self.cookies[name] = morsel.value
            if response.code not in (301, 302, 303):
                self.page = Page(response.code, path, response.body.decode("utf-8"))
                return self.page
            path = response.headers["Location"]
            self.redirects.append(path)
            method, body = "GET", None
        raise AssertionError("more than 10 redirects")


# ---------------------------------------------------------------------- the server


def copy_example(into: Path) -> Path:
    """A copy of the example prototype, so that tests never write into the repository."""
    folder = into / "example"
    folder.mkdir()
    for part in EXAMPLE_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, folder / part)
        else:
            shutil.copy2(source, folder / part)
    return folder


class ExampleCase(tornado.testing.AsyncHTTPTestCase):
    """Serves a fresh copy of the example prototype for each test."""

    url_prefix = ""

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="protonb-example-")
        tmp = Path(self._tmp.name)
        self.proto = Prototype(copy_example(tmp), data_dir=tmp / "data", url_prefix=self.url_prefix)
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.proto.close()
        self._tmp.cleanup()

    def get_app(self):
        return protonb.server.make_app(self.proto.site)

    def participant(self) -> Browser:
        return Browser(self)

    def answer_everything(self, browser: Browser, first_name: str = "Ada") -> Page:
        """Go through the whole journey, as someone aged 18 or over; return check-answers."""
        browser.get("/")
        browser.click("Start now")
        browser.submit({"first-name": first_name, "last-name": "Lovelace"})
        browser.submit({"over-18": "yes"})
        browser.submit(
            {
                "claimant[first-name]": first_name,
                "claimant[last-name]": "Lovelace",
                "partner[first-name]": "Charles",
                "partner[last-name]": "Babbage",
            }
        )
        browser.submit({"contact": ["email", "post"]})
        return browser.submit({"dob[day]": "10", "dob[month]": "12", "dob[year]": "1985"})


# ---------------------------------------------------------------------- user stories


class TestJourney(ExampleCase):
    def test_start_page_shows_the_service_from_the_defaults(self):
        """A participant opening the prototype sees the service name and amount from the defaults."""
        page = self.participant().get("/")
        assert page.status == 200
        assert page.h1s == ["Apply for a household support payment"]
        assert "£150" in page.text
        assert 'href="/name"' in page.text

    def test_each_answer_leads_to_the_next_question(self):
        """Pressing Continue on each page stores the answers and shows the next question."""
        browser = self.participant()
        browser.get("/")
        assert browser.click("Start now").h1s == ["What is your name?"]
        steps = [
            ({"first-name": "Ada"}, "/over-18", "Are you 18 or over?"),
            ({"over-18": "yes"}, "/household", "Who lives in your household?"),
            ({"claimant[first-name]": "Ada"}, "/contact", "How can we contact you?"),
            ({"contact": ["phone"]}, "/dob", "What is your date of birth?"),
            ({"dob[day]": "1"}, "/check-answers", "Check your answers"),
            ({}, "/confirmation", "Application sent"),
        ]
        for answers, next_path, heading in steps:
            page = browser.submit(answers)
            assert browser.redirects == [next_path], f"the form should lead on to {next_path}"
            assert page.status == 200
            assert page.h1s == [heading]

    def test_check_answers_reads_back_every_answer(self):
        """After the whole journey, check-answers shows every answer the participant gave."""
        page = self.answer_everything(self.participant())
        assert page.h1s == ["Check your answers"]
        assert page.shown("answer-name") == "Ada Lovelace"
        assert page.shown("answer-over-18") == "Yes"
        assert page.shown("answer-claimant") == "Ada Lovelace"
        assert page.shown("answer-partner") == "Charles Babbage"
        assert page.shown("answer-contact") == "Email Post"
        assert page.shown("answer-dob") == "10 December 1985"

    def test_names_are_shown_escaped(self):
        """A name with an apostrophe and a tag is shown as typed, never run as HTML."""
        browser = self.participant()
        page = self.answer_everything(browser, first_name=TRICKY_NAME)
        main = page.text.split('<main id="main-content"', 1)[1]
        assert "<b>" not in main
        assert "O&#39;Neil &lt;b&gt; Lovelace" in main
        assert page.shown("answer-name") == f"{TRICKY_NAME} Lovelace"
        assert page.shown("answer-claimant") == f"{TRICKY_NAME} Lovelace"
        # Going back, the inputs hold the name, escaped inside the value attribute.
        name_page = browser.get("/name")
        assert 'value="O&#39;Neil &lt;b&gt;"' in name_page.text
        assert name_page.value_of("first-name") == TRICKY_NAME
        assert browser.get("/household").value_of("claimant[first-name]") == TRICKY_NAME

    def test_change_links_go_back_to_each_question(self):
        """Check-answers has a Change link to every question page."""
        page = self.answer_everything(self.participant())
        for path in ("/name", "/over-18", "/household", "/contact", "/dob"):
            assert f'<a href="{path}">Change' in page.text, f"no Change link to {path}"
        assert '<form method="post" action="/confirmation"' in page.text

    def test_pages_show_stored_answers_when_coming_back(self):
        """Going back to a question shows the answer already given."""
        browser = self.participant()
        self.answer_everything(browser)
        assert browser.get("/name").value_of("last-name") == "Lovelace"
        assert browser.get("/over-18").ticked("over-18") == ["yes"]
        household = browser.get("/household")
        assert household.value_of("partner[first-name]") == "Charles"
        assert household.value_of("partner[last-name]") == "Babbage"
        assert browser.get("/contact").ticked("contact") == ["email", "post"]
        dob = browser.get("/dob")
        assert [dob.value_of(f"dob[{part}]") for part in ("day", "month", "year")] == ["10", "12", "1985"]

    def test_sending_the_application_shows_the_confirmation(self):
        """Accept and send shows the confirmation with the reference from the defaults."""
        browser = self.participant()
        self.answer_everything(browser)
        page = browser.submit()
        assert page.h1s == ["Application sent"]
        assert "HSP-4821-7730" in page.text
        assert "Thank you, Ada." in page.text

    def test_participants_do_not_see_each_others_answers(self):
        """Two participants on the same prototype each see only their own answers."""
        first, second = self.participant(), self.participant()
        self.answer_everything(first, first_name="Grace")
        page = second.get("/check-answers")
        assert page.shown("answer-name") == ""
        assert page.shown("answer-contact") == "None chosen"
        assert self.answer_everything(first, "Grace").shown("answer-name") == "Grace Lovelace"


class TestEligibility(ExampleCase):
    def test_under_18_lands_on_the_ineligible_page(self):
        """Someone who answers No to being 18 or over is told they cannot apply."""
        browser = self.participant()
        browser.get("/name")
        browser.submit({"first-name": "Sam", "last-name": "Smith"})
        page = browser.submit({"over-18": "no"})
        assert browser.redirects == ["/ineligible"]
        assert page.h1s == ["You cannot apply for this payment"]

    def test_18_or_over_carries_on_to_the_household_question(self):
        """Someone who answers Yes goes on to the household question."""
        browser = self.participant()
        browser.get("/over-18")
        page = browser.submit({"over-18": "yes"})
        assert browser.redirects == ["/household"]
        assert page.h1s == ["Who lives in your household?"]

    def test_changing_the_answer_to_yes_lets_them_carry_on(self):
        """After being turned away, changing the answer to Yes carries on to the household question."""
        browser = self.participant()
        browser.get("/over-18")
        browser.submit({"over-18": "no"})
        browser.click("Change your answer")
        assert browser.page.ticked("over-18") == ["no"]
        page = browser.submit({"over-18": "yes"})
        assert page.h1s == ["Who lives in your household?"]


class TestContactChoices(ExampleCase):
    def test_unticking_every_box_clears_the_contact_choices(self):
        """Unticking every contact box (only the hidden _unchecked value is sent) clears the choices."""
        browser = self.participant()
        self.answer_everything(browser)
        assert browser.get("/contact").ticked("contact") == ["email", "post"]
        page = browser.submit({"contact": []})
        assert browser.sent == [("contact", "_unchecked")]
        assert page.h1s == ["What is your date of birth?"]
        assert browser.get("/contact").ticked("contact") == []
        assert browser.get("/check-answers").shown("answer-contact") == "None chosen"
        assert "contact" not in self._only_session_data()

    def test_ticking_one_box_keeps_only_that_one(self):
        """Ticking just Phone, after Email and Post, leaves Phone as the only choice."""
        browser = self.participant()
        self.answer_everything(browser)
        browser.get("/contact")
        browser.submit({"contact": ["phone"]})
        assert browser.sent == [("contact", "_unchecked"), ("contact", "phone")]
        assert browser.get("/contact").ticked("contact") == ["phone"]
        assert browser.get("/check-answers").shown("answer-contact") == "Phone"
        assert self._only_session_data()["contact"] == ["phone"]

    def _only_session_data(self) -> dict:
        """The stored data of the only session there is."""
        (record,) = self.proto.store.list()
        return record.data


class TestEveryPage(ExampleCase):
    def test_every_page_answers_200_with_one_h1_and_labelled_inputs(self):
        """Every page opens, has exactly one main heading, and every input has its own label."""
        browser = self.participant()
        for path in PAGES:
            page = browser.get(path)
            assert page.status == 200, path
            assert page.lang == "en", path
            assert len(page.h1s) == 1, f"{path} has {len(page.h1s)} <h1>"
            labels = page.label_fors
            assert len(labels) == len(set(labels)), f"{path} has two labels for one input"
            for found in page.inputs:
                if found.get("type") == "hidden":
                    continue
                assert found.get("id"), f"{path}: input {found.get('name')} has no id"
                assert found["id"] in labels, f"{path}: input {found['id']} has no <label for>"

    def test_radios_and_checkboxes_sit_in_a_fieldset_with_a_legend(self):
        """Every radio and checkbox group is a fieldset whose legend asks the question."""
        browser = self.participant()
        seen = 0
        for path in PAGES:
            for found in browser.get(path).inputs:
                if found.get("type") in ("radio", "checkbox"):
                    seen += 1
                    assert found["_in_fieldset_with_legend"], f"{path}: {found['id']} is outside a fieldset"
        assert seen == 5

    def test_every_page_has_a_skip_link_and_no_javascript(self):
        """Every page starts with a skip link to the main content and has no script."""
        browser = self.participant()
        for path in PAGES:
            page = browser.get(path)
            assert '<a class="skip-link" href="#main-content">' in page.text, path
            assert 'id="main-content"' in page.text, path
            assert "<script" not in page.text.lower(), path
            assert " on" + "click=" not in page.text.lower(), path

    def test_the_stylesheet_is_linked_and_served(self):
        """Every page links the stylesheet, and it is served with a visible focus style."""
        browser = self.participant()
        for path in PAGES:
            assert "/public/stylesheets/application.css" in browser.get(path).addresses, path
        response = self.fetch("/public/stylesheets/application.css")
        assert response.code == 200
        assert b":focus" in response.body


def browser_goes_to(address: str, location: str) -> str:
    """Where a browser at ``address`` (under /research) goes for ``location``, through the proxy.

    jupyter-server-proxy 4.6 and later put the prefix in front of a Location starting with
    "/"; older versions pass it on as it is. The browser must land at the same place either way.
    """
    rewritten = "/research" + location if location.startswith("/") else location
    plain = urllib.parse.urljoin("http://hub" + address, location)
    proxied = urllib.parse.urljoin("http://hub" + address, rewritten)
    assert plain == proxied, f"Location {location} depends on the proxy: {plain} or {proxied}"
    return urllib.parse.urlsplit(plain).path


class TestBehindAProxy(ExampleCase):
    url_prefix = "/research"

    def test_every_link_and_form_keeps_the_url_prefix(self):
        """Served under /research, every link, form and the stylesheet stay under /research."""
        browser = self.participant()
        for path in PAGES:
            page = browser.get(path)
            for address in page.addresses:
                assert address.startswith(("/research/", "#")), f"{path} links to {address}"

    def test_the_ineligible_redirect_keeps_the_url_prefix(self):
        """Under a prefix, the route function's redirect to /ineligible keeps the prefix."""
        response = self.fetch(
            "/household",
            method="POST",
            body="over-18=no",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
            raise_error=False,
        )
        assert response.code == 302
        assert browser_goes_to("/research/household", response.headers["Location"]) == "/research/ineligible"

    def test_a_posted_answer_is_sent_on_under_the_url_prefix(self):
        """Under a prefix, pressing Continue on /name sends the participant to /research/over-18."""
        response = self.fetch(
            "/over-18",
            method="POST",
            body="first-name=Ada",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
            raise_error=False,
        )
        assert response.code == 302
        assert browser_goes_to("/research/over-18", response.headers["Location"]) == "/research/over-18"

    def test_the_address_protonb_gives_out_opens_the_start_page(self):
        """Served under /research, the address proto.url gives a researcher opens the start page."""
        address = self.proto.start(port=0, show=False)
        try:
            response = self.io_loop.run_sync(lambda: self.http_client.fetch(address, raise_error=False))
        finally:
            self.proto.stop()
        assert response.code == 200
        assert "Apply for a household support payment" in response.body.decode("utf-8")
