"""Every trigger's router, merged in one place. A new trigger is a new module and one line."""

from bot.routing import Router
from handlers import ci_failure, config_push, default_branch_push, issue_label, pr_command, pr_review

router = Router(issue_label.router, pr_command.router, pr_review.router, config_push.router,
                default_branch_push.router, ci_failure.router)
