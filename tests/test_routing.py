from bot.routing import Delivery, JobRequest, Router, with_acknowledgements
from tests.support import payloads


def test_routers_merge_and_route_by_event_and_action():
    one, two = Router(), Router()
    one.register("issues", "labeled")(lambda d: JobRequest("a", "k"))
    two.register("issues")(lambda d: JobRequest("b", "k"))
    merged = Router(one, two)
    delivery = Delivery("issues", "d", payloads.issues_labeled())
    assert [job.kind for job in merged.dispatch(delivery)] == ["a", "b"]
    assert merged.events() == {"issues"}
    assert not merged.routes("issue_comment", "created")


def test_nothing_is_dispatched_for_bots_or_without_an_installation():
    router = Router()
    router.register("issues", "labeled")(lambda d: JobRequest("a", "k"))
    by_bot = payloads.issues_labeled(sender="ci[bot]", bot=True)
    assert router.dispatch(Delivery("issues", "d", by_bot)) == []
    not_for_the_app = payloads.issues_labeled()
    del not_for_the_app["installation"]
    assert router.dispatch(Delivery("issues", "d", not_for_the_app)) == []


def test_a_handler_registered_from_bots_hears_bots_and_the_others_still_do_not():
    router = Router()
    router.register("issues", "labeled")(lambda d: JobRequest("people-only", "k"))
    router.register("issues", from_bots=True)(lambda d: JobRequest("anyone", "k"))
    merged = Router(router)  # the mark survives merging routers, as handlers/__init__ does
    by_bot = payloads.issues_labeled(sender="ci[bot]", bot=True)
    assert [job.kind for job in merged.dispatch(Delivery("issues", "d", by_bot))] == ["anyone"]
    by_person = payloads.issues_labeled()
    assert [job.kind for job in merged.dispatch(Delivery("issues", "d", by_person))] == [
        "people-only", "anyone"]


def test_acknowledged_requests_get_a_job_of_their_own_key():
    work = JobRequest("issue", "acme/widgets#1", {"number": 1}, acknowledge=True)
    quiet = JobRequest("control", "acme/widgets#1/control", {})
    expanded = with_acknowledgements([work, quiet])
    assert [(j.kind, j.key) for j in expanded] == [
        ("issue", "acme/widgets#1"), ("ack", "acme/widgets#1/ack"),
        ("control", "acme/widgets#1/control")]
    assert expanded[1].spec == {"number": 1, "for_kind": "issue", "for_key": "acme/widgets#1"}
