"""Web search on request: ``/search`` lists results, ``/web`` reads the top pages for the model.

Nothing here runs unless the user asked, and every function that touches the network
refuses first, with OfflineError, while offline mode is on. Importing the package is cheap:
ddgs and trafilatura are imported on first use.
"""

from app.core.web.pages import Page, PageError, fetch_page, read_pages, sources_markdown, web_context
from app.core.web.search import (DuckDuckGoProvider, NoResults, SearchError, SearchProvider, SearchResult,
                                 TavilyProvider, format_results_markdown, provider_for)

__all__ = ["DuckDuckGoProvider", "NoResults", "Page", "PageError", "SearchError", "SearchProvider", "SearchResult",
           "TavilyProvider", "fetch_page", "format_results_markdown", "provider_for", "read_pages",
           "sources_markdown", "web_context"]
