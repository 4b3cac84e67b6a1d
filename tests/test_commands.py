from bot.routing import Delivery
from handlers.commands import Command, parse_command
from handlers.pr_command import issue_comment_created
from tests.support import payloads


def test_instruction_after_the_command_word():
    assert parse_command("/backend add a health endpoint") == Command("work", "add a health endpoint")


def test_command_on_a_later_line_takes_the_lines_below():
    body = "Thanks!\n/backend fix this\nand also the docs"
    assert parse_command(body) == Command("work", "fix this\nand also the docs")


def test_control_words():
    for word in ("help", "status", "cancel", "retry"):
        assert parse_command(f"/backend {word}") == Command(word, "")
        assert parse_command(f"/backend {word.upper()}") == Command(word, "")


def test_a_control_word_followed_by_text_is_an_instruction():
    assert parse_command("/backend retry the flaky test").name == "work"


def test_not_a_command():
    assert parse_command("please /backend this") is None
    assert parse_command("/backendish thing") is None
    assert parse_command(None) is None
    assert parse_command("") is None


def test_bare_command_is_work_with_no_instruction():
    assert parse_command("/backend") == Command("work", "")


def test_other_command_word():
    assert parse_command("/bot do it", word="bot") == Command("work", "do it")


def test_continue_alone_goes_on_and_continue_with_text_is_an_instruction():
    assert parse_command("/backend continue") == Command("continue", "")
    assert parse_command("/backend continue with the docs") == Command("work", "continue with the docs")


def test_answer_takes_the_rest_of_the_line_and_the_lines_below():
    assert parse_command("/backend answer Use floats.\nAnd round to 2 places.") == Command(
        "answer", "Use floats.\nAnd round to 2 places.")
    assert parse_command("/backend ANSWER yes") == Command("answer", "yes")
    assert parse_command("/backend answer") == Command("answer", "")
    assert parse_command("/backend answers are here").name == "work"


def test_update_is_a_command_word_of_its_own():
    assert parse_command("/backend update") == Command("update", "")
    assert parse_command("  /backend UPDATE  ") == Command("update", "")
    # With text after it, it is an instruction like any other.
    assert parse_command("/backend update the changelog") == Command("work", "update the changelog")


def _comment(body: str, *, pull: bool, sender: str = "octocat"):
    payload = payloads.pr_comment(7, body, sender=sender)
    if not pull:
        del payload["issue"]["pull_request"]
    return issue_comment_created(Delivery("issue_comment", "d-1", payload))


def test_backend_update_on_a_pull_request_is_a_round_in_line_with_its_other_work():
    request = _comment("/backend update", pull=True)
    assert request is not None
    assert (request.kind, request.key, request.acknowledge) == ("update", "acme/widgets#7", True)
    assert request.spec["trigger"] == "command" and request.spec["requester"] == "octocat"
    assert request.spec["is_pull"] is True and request.spec["instruction"] == ""


def test_backend_update_on_an_issue_goes_to_the_update_job_to_explain_without_an_acknowledgement():
    request = _comment("/backend update", pull=False)
    assert request is not None
    assert (request.kind, request.acknowledge, request.spec["is_pull"]) == ("update", False, False)
