"""Route functions for the example prototype.

protonb stores every answer a form sends before a route function runs, so a function
only has to read ``req.session.data`` and decide where the participant goes next:

- return ``req.redirect("/some-page")`` to send them to another page,
- return ``req.render("some-page", key=value)`` to show a template here,
- return nothing to let protonb do what it always does (a POST is sent on to GET the
  same path, which shows the next question).

protonb reloads this file whenever you save it.
"""

from protonb import Router

router = Router()


# /over-18 posts its answer to /household, the next page of the journey. People who
# answer "No" cannot apply, so they see /ineligible instead of the household question.
@router.route("/household", methods=["POST"])
def eligibility(req):
    if req.session.data.get("over-18") == "no":
        return req.redirect("/ineligible")
    # Anyone else carries on to /household as usual.
    return None
