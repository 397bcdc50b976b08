"""Where documents come from: Riksdagen's open data (``qa fetch riksdagen``, ``qa sync``).

- ``http``: one polite HTTP session (retries with backoff, Retry-After, a request rate,
  a User-Agent that says who is asking).
- ``dokumentlista``: the search service's query, page and hit, as pure functions.
- ``state``: what a fetch has downloaded, kept in the corpus directory; atomic writes.
- ``riksdagen``: the fetch job itself.
"""

from __future__ import annotations

#: How Riksdagen asks to be named as the source of its open data.
RIKSDAGEN_ATTRIBUTION = "Sveriges riksdag"
