"""Markdown that crosses the trust boundary, in both directions.

Inbound, text written on GitHub (issues, comments, reviews, pull request titles and
descriptions) goes to the model. `strip_hidden` removes what GitHub does not show its readers:
HTML comments, image alt text, link titles, and invisible, bidirectional, tag and
variation-selector characters. The model then acts only on words that the people who asked
for the work could see.

Outbound, text the agent composed goes to GitHub. `neutralise` keeps it from acting there:
mentions become inline code (no notification), so does the reference after a closing keyword
(nothing closes but what the bot adds itself), HTML comments go (no hidden text, no fake
`<!-- backend-bot:… -->` markers), images become links (nothing loads from a host the agent
chose) and raw HTML is escaped (it could hide text or load images too).

Both directions need to know what GitHub renders as code, where all of that is visible, inert
text; they share one reading of it, which errs towards prose where Markdown is ambiguous.

    markdown    what GitHub renders as code or comments, where link titles, tables and raw
                HTML are: the reading both directions act on
    inbound     strip_hidden
    outbound    neutralise, neutralise_line, blockquote
    fences      code_fence, code_span: any text in code that nothing inside can end
"""

from bot.sanitize.fences import code_fence, code_span
from bot.sanitize.inbound import strip_hidden
from bot.sanitize.markdown import INVISIBLE
from bot.sanitize.outbound import blockquote, neutralise, neutralise_line

__all__ = [
    "INVISIBLE",
    "blockquote",
    "code_fence",
    "code_span",
    "neutralise",
    "neutralise_line",
    "strip_hidden",
]
