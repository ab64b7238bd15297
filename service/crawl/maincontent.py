"""Main-content extraction for only_main_content: which subtree is the page's own content,
and which parts of it are boilerplate. It works on the bs4 tree the parser already built.

One iterative pass measures every element (its text, the part of it inside links; form
controls are skipped, unless a markup error left one open around the `<main>` or an
`<article>`) and drops what is boilerplate by what it is: page chrome by ARIA role or
HTML element (nav, page header and footer, complementary asides, dialogs and tooltips,
form fields' labels), hidden elements (not disclosure panels: tabs, accordions, FAQ
answers, what a toggle's aria-controls names), and blocks whose class or id names a known
kind of chrome (cookie banners, share bars, breadcrumbs, related-posts boxes, ...). The
content root is then the `<main>`, the one `<article>`, or else the deepest element
holding most of the page's non-link text. Inside the root, blocks that are mostly links
with little text of their own (menus, tag clouds, "read next" lists) are dropped, except
where the page is itself a list of links to items (listings and collections), judged by
the page, not by the block; in a grid of cards (siblings of one class, each a linked title
beside text of its own) an item's one link stays, and the prose outside the root (a shop's
category description after its product grid) is content too. A sibling that repeats the
one before it word for word (a carousel's cloned slides) goes. Footnotes and notes (`role=note`,
`<aside>` inside the content) stay.

The result is a list of roots with the boilerplate detached from the tree, so the text
walk and the markdown converter see the same content. Cost: one pass over the elements and
one over the root's descendants (and a find_all of the radio and checkbox inputs), linear
in the size of the page; nothing here recurses.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString, PageElement, RubyParenthesisString, RubyTextString

__all__ = ["main_content"]

_TEXT_TYPES = frozenset({NavigableString, RubyTextString, RubyParenthesisString})
_MUTED = frozenset(
    {
        "head", "title", "script", "style", "noscript", "template", "svg", "iframe",
        "object", "button", "select", "input", "textarea", "option", "canvas", "dialog",
    }
)  # fmt: skip
_FIELDS = frozenset({"input", "select", "textarea"})
# Muted elements that are detached too (the text walk would otherwise read them).
_DETACHED = frozenset({"button", "select", "textarea", "dialog", "object", "iframe"})
_LANDMARK_ROLES = frozenset(
    {"navigation", "banner", "contentinfo", "complementary", "search", "menubar", "menu",
     # Overlays: cart drawers, size guides, newsletter pop-ups, tooltips.
     "dialog", "alertdialog", "tooltip"}
)  # fmt: skip
_SECTIONING = frozenset({"article", "main", "section", "aside", "nav"})
# The root is one of these (a heading or a paragraph is never the whole content).
_CONTAINERS = frozenset(
    {"div", "section", "main", "article", "td", "table", "tbody", "tr", "form", "center",
     "font", "span", "ul", "ol", "dl", "body"}
)  # fmt: skip
# Blocks judged by their link density inside the content root.
_BLOCKS = frozenset(
    {"div", "ul", "ol", "section", "table", "dl", "header", "footer", "aside", "span"}
)

# Class/id words of page chrome: matched as whole words of the class or id (split on
# "-", "_" and spaces) so "navbar" and "share-buttons" match but "canvas" does not.
_CHROME_WORDS = re.compile(
    r"(?:^|[\s_-])(?:"
    r"nav|navbar|navigation|navheader|navfooter|menu|menubar|breadcrumbs?|sidebar|side-bar|footer|site-footer|"
    r"cookies?|cookie-banner|consent|gdpr|newsletter|subscribe|subscription|signup|"
    r"optin|opt-in|email-capture|mailing-list|"  # email sign-up boxes
    r"rfi|request-info|requestinfo|"  # "request information" forms (colleges, services)
    r"share|sharing|social|socials|share-buttons|sharedaddy|related|related-posts|"
    r"recommended|promo|advert|advertisement|ads|adsbygoogle|ad|sponsor|sponsored|"
    r"popup|modal|skip-link|skip|pagination|pager|toolbar|masthead|"
    r"tagcloud|tags|categories|author-box|author-bio|"
    r"comments?|comment-list|comment-form|respond|disqus|"
    r"byline|author|bio|disclaimer|disclosure|affiliate|cta|btn|button|prevnext|"
    r"read-time|reading-time|signature|userbanner|usertitle|userdetails|userextras|"
    r"userinfo|user-info|user-details|user-title|member-info|memberinfo|likessummary|"
    r"sorting|sort-options|refinements?|"
    r"quoteexpand|expandlink|expand-link|postprofile|entry-meta|post-meta|"  # posts' furniture
    r"message-attribution|reactionsbar|"  # XenForo's post date and number, reaction line
    r"votecell|answers-header|"  # Stack Exchange's vote counts, "4 Answers" (_QA_CHROME)
    r"login|log-in|signin|sign-in|sign-up|"  # account boxes
    r"cguestteaser|guest-teaser|bottom-notice|"  # forums' "sign in to reply" (IPS, Stack Exchange)
    r"feedback|helpful|was-this-helpful|edit-page|edit-link|edit-this-page|"  # docs' furniture
    r"back-to-top|to-top|scroll-top|scrolltop|copyright"
    r")(?:$|[\s_-])",
    re.IGNORECASE,
)
# Consent managers' own names (OneTrust, Cookiebot, Didomi, ...): their banners and
# preference centres are never content, however much of a short page's text they hold, so
# they are dropped whatever their share (chrome by other names is only dropped when small).
# Not "cmp": Adobe AEM names every component "cmp-..." (cmp-text is the article).
_CONSENT_WORDS = re.compile(
    r"(?:^|[\s_-])(?:onetrust|ot-sdk-container|cookiebot|cybotcookiebotdialog|didomi|"
    r"usercentrics|qc-cmp2|truste|termly|osano|iubenda|cookieconsent|cookie-consent|"
    r"cookie-notice|cookie-law-info|cookie-banner|consent-banner)(?:$|[\s_-])",
    re.IGNORECASE,
)
# ... and an id by its last word, of these: "replay-signup", "sticky-sidebar".
_LAST_WORD = re.compile(
    r"[_-](?:sidebar|newsletter|signup|subscribe|subscription|share|sharing|social|related|"
    r"recommended|feedback|breadcrumbs?|promo|byline|author|tags|disclosure|cta|nav)$",
    re.IGNORECASE,
)
_ITEM_ID = re.compile(r"[-_]\d{5,}$")
_CONTENT_WORDS = re.compile(
    r"(?:^|[\s_-])(?:content|main|article|post|entry|body|story|text|product|"
    r"description|thread|topic|question|answer)(?:$|[\s_-])",
    re.IGNORECASE,
)
# Stack Exchange's comment lists under each question and answer (not the answers), its
# vote counts and the "4 Answers" header: chrome on a thread too.
_QA_CHROME = re.compile(
    r"(?:^|\s)(?:js-comments-container|js-comments-list|votecell|answers-header)(?:$|\s)"
)
_FORUM_WORDS = re.compile(r"(?:^|[\s_-])(?:comments?|replies|reply|answers?|posts?)(?:$|[\s_-])")
_NOTE_WORDS = re.compile(
    r"(?:^|[\s_-])(?:note|notes|footnotes?|admonition|topic|callout|warning|tip)(?:$|[\s_-])",
    re.IGNORECASE,
)
# vBulletin 3 names each post's user menu (the poster's name) "postmenu_<post id>": the
# cell holding it is the poster's column (title, "Join Date", "Posts"), not the post.
_USER_MENU = re.compile(r"postmenu_\d+$")
_FORUM_TYPES = re.compile("DiscussionForumPosting|QAPage|Question")
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Headings of the sections that follow the content on so many sites.
_CHROME_HEADING = re.compile(
    r"(?:related|recommended|similar|more from|more stories|you may also|you might also|"
    r"read next|read more|trending|latest (?:posts|news|articles)|share|follow us|"
    # "Popular posts", "Most popular" but not "Popular types of marketing videos".
    r"(?:most )?popular(?:$|:| (?:posts|articles|news|stories|searches|tags|categories|"
    r"products|items|content|now|this week|today|on ))|"
    r"subscribe|sign up|newsletter|leave a (?:reply|comment)|post a comment|"
    r"join the conversation|advertisement|sponsored|other posts|also read|don't miss|"
    r"about the author|tags\b|categories\b|recent (?:posts|articles|news|stories)|"
    r"more (?:articles|posts|news|stories)|discussion about|what do you think|"
    r"ready for more|keep reading|continue reading|explore more|join the discussion|"
    # A shop's "This is what customers who viewed this product bought", "Keep exploring".
    r"(?:.{0,30}\b)?(?:customers|people|shoppers) (?:who (?:viewed|bought|purchased)|also)|"
    r"keep exploring)",
    re.IGNORECASE,
)
# Classes that hide an element: screen-reader text, blocks shown at no width. Not
# "hidden" or "is-hidden": script toggles those on tabs and accordions that are content.
_HIDDEN_CLASSES = frozenset(
    {"d-none", "visually-hidden", "visuallyhidden", "sr-only", "screen-reader-text",
     "screenreader", "invisible", "hidden-text"}
)  # fmt: skip
_SHOWN_CLASS = re.compile(
    r"d-(?:sm|md|lg|xl|xxl)-(?!none)|visible-|show-for-|.*-(?:sm|md|lg)-(?:up|only)$"
)
# On a product page, the sections after the description: reviews, "also bought", ...
_PRODUCT_TAIL_HEADING = re.compile(
    r"(?:(?:customer |product )?reviews?\b|ratings?\b|(?:customer )?testimonials|"
    r"frequently bought|customers (?:also|who)|recently viewed|similar (?:products|items)|"
    r"related (?:products|items)|featured products|complete (?:the|your) (?:look|order)|"
    r"shop the look|you (?:may|might) also|more from|people also)",
    re.IGNORECASE,
)
# ... and the blocks named like them.
_PRODUCT_CHROME_WORDS = re.compile(
    r"(?:^|[\s_-])(?:reviews?|ratings?|testimonials?|upsells?|cross-?sells?|"
    r"recommendations?|recently-viewed|also-bought|carousel|wishlist|add-to-cart|"
    r"cart|quantity|price|prices|shipping|delivery|payment|klarna|afterpay)(?:$|[\s_-])",
    re.IGNORECASE,
)
_PRODUCT_TYPES = frozenset({"Product", "ProductGroup", "IndividualProduct", "ProductModel"})
_THREAD_TYPES = frozenset({"DiscussionForumPosting", "QAPage"})
# "cta" (call to action) names an article's inserted promos ("Get a free quote", the
# newsletter box) but the sections a landing page is made of: it is chrome only on a page
# that says it is an article (Open Graph, JSON-LD) and on a product's page ("add to cart").
_CTA_WORD = re.compile(r"(?:^|[\s_-])cta(?:$|[\s_-])", re.IGNORECASE)
# "promo" names a banner, and the cards of a set of them (Adobe AEM's "cmp-promo": a
# services page's grid of services): blocks named so by "promo" (or "cta") alone, _CARDS
# or more of them holding text (not one inside another), are content on a page that does
# not say it is an article or a product.
_SOFT_WORDS = re.compile(r"(?:^|[\s_-])(?:cta|promo)(?:$|[\s_-])", re.IGNORECASE)
_ARTICLE_TYPES = frozenset(
    {"Article", "BlogPosting", "NewsArticle", "TechArticle", "Report", "ScholarlyArticle",
     "AnalysisNewsArticle", "OpinionNewsArticle", "ReportageNewsArticle", "LiveBlogPosting"}
)  # fmt: skip
# ... and on an article too when _CARDS or more such small blocks hold this share of the
# page (an article's inserted boxes hold 13% at most on the dev pages: see _cta_page).
_CTA_SHARE = 0.15
# ... and on an article too when _CARDS or more such small blocks hold this share of the
# page (an article's inserted boxes hold 13% at most on the dev pages: see _cta_page).
_CTA_SHARE = 0.15
# JSON-LD blocks longer than this are not parsed (the page kind is a hint, not a cost).
_JSON_LD_MAX = 100_000
_OG_KINDS = re.compile(r"^og:type$")
_PRODUCT_ITEMTYPE = re.compile(r"schema\.org/(?:Product|IndividualProduct|ProductGroup)\b")
# Class words of disclosure panels (accordions, FAQ answers, tabs): hidden until opened.
_PANEL_WORDS = re.compile(
    r"(?:^|[\s_-])(?:accordion|faq|answer|collapse|collapsible|panel|toggle|tab-pane|"
    r"tab-content|disclosure|expandable)(?:$|[\s_-])",
    re.IGNORECASE,
)
# An aria-hidden link with this much text is a summary shown on screen (_summary_link).
_SUMMARY_LINK = 50
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)

# The root is the deepest element holding at least this share of the page's non-link
# text (measured on the dev split: lower keeps boilerplate, higher loses content).
_ROOT_SHARE = 0.75
# ... unless what the siblings hold is more than this, and the child less than _ROOT_ALL.
_REST = 1500
_ROOT_ALL = 0.9
# A block inside the root is navigation when at least this share of its text is links
# and its own text outside links is short.
_LINK_DENSITY = 0.75
# An element named like chrome is kept when it holds this share of the page's text: a
# wrapper such as `<div class="site has-sidebar">` is the page, not its sidebar.
_CHROME_SHARE = 0.4
# <main> or the articles are the content when they hold this share of the page's text.
_LANDMARK_SHARE = 0.2
# Below this many characters of text the page's <noscript> content is measured too.
_NOSCRIPT_PAGE = 500
_SHORT_TEXT = 200
# ... or, on a page of links, this much denser than the root.
_DENSER = 0.15
# ... or this much, on a listing: a root holding a grid of cards (_card_items), or a page
# that does not say it is an article or a thread.
_DENSER_LIST = 0.35
# A card grid: at least this many sibling elements of one tag and class, each with text
# inside and outside links (an item's title and its price or summary), holding this share
# of the root's text, is the content of a listing, not a menu.
_CARDS = 4
_CARD_SHARE = 0.3
# ... and at most this many characters an item on average (posts of a thread are longer).
_CARD_TEXT = 400
# Link text counts this much towards an element's share of the page: listings are links.
_LINK_WEIGHT = 0.4
# Chrome-named siblings of one class count together unless this share of them is links.
_GROUP_LINKS = 0.5
# A form with fields is chrome when it holds less than this share of the page.
_FORM_SHARE = 0.15
# Elements named like comments holding this share of the page make it a thread.
_THREAD_SHARE = 0.5
# ... unless the page says it is an article and this much text is outside the comments.
_ARTICLE_BODY = 500
# A listing's root (a card grid) at least this dense in links takes in the prose outside
# it: blocks with this many characters, at most this share of them links (_descriptions).
_LIST_DENSITY = 0.2
_PROSE = 500
_PROSE_LINKS = 0.1
# <footer>s inside the content are chrome (an article's tags, author box, licence) unless
# there are this many: a listing's cards, each with its own (a byline, a date).
_FOOTERS = 4
# A sibling repeating the one before it is dropped from this many characters of text on.
_REPEAT_TEXT = 20
# A chrome-headed section is dropped when it is at most this share of the root.
_TAIL_SHARE = 0.3
# A post's reading time, the whole text of its element.
_READ_TIME = re.compile(
    r"\d+\s*(?:min|mins|minutes?)\.?\s+(?:read|reading|to read)(?:\s+time)?$",
    re.IGNORECASE,
)
_READ_TIME_TEXT = 25
# ... and a control's label left as text (a link or a span styled as the shop's button, a
# spinner's caption): never the content's, however the element is named.
_CONTROL_TEXT = re.compile(
    r"(?:loading(?:\.\.\.|\u2026)?|add to (?:cart|bag|basket|wish ?list|favou?rites)|"
    r"quick (?:shop|view|add|buy))$",
    re.IGNORECASE,
)
# Blocks between the title and the root that open the content (a standfirst): at most
# this share of the root's text, and at most this share of theirs in links.
_LEDE_SHARE = 0.15
_LEDE_LINKS = 0.2
# ... of this many characters each: a standfirst, not the title, the byline, the date.
_LEDE_TEXT = 100


def _hidden_by_class(classes: list[str]) -> bool:
    """Classes that hide an element on every screen ("sr-only", "d-none", "hidden")."""
    if _HIDDEN_CLASSES.isdisjoint(classes):
        return False
    # "d-none d-md-block", "hidden md:flex": shown from some width on.
    return not any(":" in c or _SHOWN_CLASS.match(c) for c in classes)


def _class(tag: Tag) -> str:
    classes = tag.attrs.get("class")
    return " ".join(classes) if isinstance(classes, list) else str(classes or "")


def _in_heading(tag: Tag) -> bool:
    """A heading, or an element of one (MediaWiki's <span class="mw-headline" id=...>)."""
    parent = tag.parent
    return tag.name in _HEADINGS or (parent is not None and parent.name in _HEADINGS)


def _bem_variant(name: str, classes: list[str]) -> str:
    """A BEM modifier class ("block--mod", "block__elem--mod") by its block alone when it
    is not the element's own: the variant of the block an element of it is in, or of a
    child's element (Adobe AEM's "cmp-cta__button--full-width" on the cta block): the
    modifier ("--full-width") and the child's element ("__button") do not name this one.
    A modifier of the element's own class ("cTopicOverview--sidebar") counts in full."""
    base = name.split("--", 1)[0]
    if base and base not in classes:
        block, elem, _ = base.partition("__")
        if elem or any(other.startswith(base + "__") for other in classes):
            return block
    return name


def _words(tag: Tag) -> str:
    attrs = tag.attrs
    classes = attrs.get("class")
    if isinstance(classes, list):
        words = " ".join(_bem_variant(name, classes) if "--" in name else name for name in classes)
    else:
        words = classes or ""
    ident = attrs.get("id")
    # An id counts by its first word: "sidebar-2" is chrome, DocBook's
    # "SQL-FOR-UPDATE-SHARE" (made from a section title) is not; or by its last, of a few
    # (_LAST_WORD: "replay-signup"), unless a heading's (a slug of its title: "ninja-promo").
    # Not an id made for one item of a list ("ad-listing-title-4325369879"): a record's
    # number, not the name of a component.
    if (
        isinstance(ident, str)
        and (
            _CHROME_WORDS.match(ident)
            or (not ident.isupper() and _LAST_WORD.search(ident) and not _in_heading(tag))
        )
        and not _ITEM_ID.search(ident)
    ):
        words = f"{words} {ident}"
    return words


def _summary_link(tag: Tag, name: str) -> bool:
    """A link holding a sentence or more (a card's summary), not a footnote mark or an icon."""
    return name == "a" and len(tag.get_text().strip()) >= _SUMMARY_LINK


def _panel(tag: Tag, role: object, ident: object, panels: set[str]) -> bool:
    """A disclosure panel: a tab panel, what a toggle's aria-controls names, or named so."""
    if role == "tabpanel" or (isinstance(ident, str) and ident in panels):
        return True
    return _PANEL_WORDS.search(_class(tag)) is not None


# Every verdict but consent is soft: markup errors nest whole pages in an unclosed <header>,
# so an element is only dropped when it holds a small share of the page's text (_drop_chrome).
_KEEP, _CHROME, _COMMENTS, _CONSENT = "keep", "chrome", "comments", "consent"
_CTA = "cta"  # named like chrome by "cta" alone: chrome on an article (see _CTA_WORD)
_FOOTER = "footer"  # a <footer> inside the content (see _FOOTERS)
_PROMO = "promo"  # named like chrome by "promo" alone (see _SOFT_WORDS)


def _verdict(
    tag: Tag, name: str, in_content: bool, panels: set[str], toggles: frozenset[str]
) -> str:
    """Boilerplate by what the element is: dropped now, named like chrome, or kept."""
    attrs = tag.attrs
    role = attrs.get("role")
    ident = attrs.get("id")
    style = attrs.get("style")
    # Hidden is soft: script-driven pages hide what they show later (tabs, streamed
    # React content), so a hidden element holding much of the page stays. A disclosure
    # panel (a tab, an accordion's or a FAQ's answer) is content its page shows on a click.
    if (
        "hidden" in attrs
        # aria-hidden hides from screen readers only: a link so marked around a card's
        # summary (a duplicate of its title link) is shown on screen.
        or (attrs.get("aria-hidden") == "true" and not _summary_link(tag, name))
        or (isinstance(style, str) and _HIDDEN_STYLE.search(style))
    ) and not _panel(tag, role, ident, panels):
        return _CHROME
    if isinstance(role, str):
        role = role.strip().lower()
        if role == "note" or role == "main":
            return _KEEP
        if role in _LANDMARK_ROLES and name not in ("main", "article"):
            return _CHROME
    if name == "nav" or "data-excludequote" in attrs:
        # Invision marks what a post's quote leaves out: its edit notice, its signature.
        return _CHROME
    if name == "label":
        # A form field's label ("Quantity", "Select a size"); not the label of a radio or
        # checkbox, which script-free tabs and accordions use as their headings.
        target = attrs.get("for")
        if isinstance(target, str) and target not in toggles:
            return _CHROME
    words = _words(tag)
    if (words and _CONSENT_WORDS.search(words)) or (
        isinstance(ident, str) and _CONSENT_WORDS.match(ident)
    ):
        return _CONSENT
    if name == "aside":
        # Footnotes and topic boxes are part of the text; other asides are sidebars.
        return _KEEP if in_content and words and _NOTE_WORDS.search(words) else _CHROME
    if (name == "header" or name == "footer") and not in_content:
        return _CHROME
    # An article's footer (its tags, the author's box, "last updated", the licence) is
    # chrome; not the cards' footers of a listing, one in every item (see _FOOTERS).
    kept = _FOOTER if name == "footer" else _KEEP
    if not words or name in ("body", "html", "main", "article"):
        return kept
    classes = attrs.get("class")
    if isinstance(classes, list) and _hidden_by_class(classes):
        return _CHROME
    if _CHROME_WORDS.search(words) is None:
        return kept
    if in_content and _NOTE_WORDS.search(words):
        return _KEEP
    # Comments are chrome on an article and the content of a thread (known after the walk);
    # the comments and vote counts of a Q&A site's posts are chrome on both (_QA_CHROME).
    if _FORUM_WORDS.search(words) and not _QA_CHROME.search(words):
        return _COMMENTS
    if not _soft_only(words):
        return _CHROME
    return _CTA if _CTA_WORD.search(words) else _PROMO


def _soft_only(words: str) -> bool:
    """Named like chrome by the words "cta" or "promo" and no other chrome word."""
    return _SOFT_WORDS.search(words) is not None and (
        _CHROME_WORDS.search(_SOFT_WORDS.sub(" ", words)) is None
    )


def _ld_types(data: Any, depth: int = 0) -> Iterator[str]:
    """The @type values of a JSON-LD document's top-level nodes (and its @graph)."""
    if depth > 2:
        return
    if isinstance(data, list):
        for item in data[:50]:
            yield from _ld_types(item, depth + 1)
    elif isinstance(data, dict):
        kind = data.get("@type")
        if isinstance(kind, str):
            yield kind
        elif isinstance(kind, list):
            yield from (k for k in kind if isinstance(k, str))
        graph = data.get("@graph")
        if graph is not None:
            yield from _ld_types(graph, depth + 1)


@dataclass(frozen=True, slots=True)
class _PageKinds:
    """What the page says it is (JSON-LD, Open Graph)."""

    thread: bool
    product: bool
    article: bool


def _page_kinds(soup: BeautifulSoup, scripts: list[Tag]) -> _PageKinds:
    """What the page says it is: one reading of its Open Graph type and JSON-LD.

    `scripts` are the body's JSON-LD scripts, found in the measuring walk.
    """
    head = soup.head
    types: set[str] = set()
    article = False
    if head is not None:
        scripts = [*head.find_all("script", attrs={"type": "application/ld+json"}), *scripts]
        # Nuxt and others write the Open Graph tags with name= rather than property=.
        for attr in ("property", "name"):
            for meta in head.find_all("meta", attrs={attr: _OG_KINDS}):
                kind = str(meta.get("content") or "").strip().lower()
                article = article or kind == "article"
                if attr == "property" and kind.startswith("product"):
                    types.add("Product")
    for script in scripts:
        source = script.string
        if source is None or len(source) > _JSON_LD_MAX:
            continue
        try:
            data = json.loads(source)
        except ValueError:  # hand-written JSON-LD is often not JSON
            continue
        types.update(_ld_types(data))
        # An article is looked for one level deeper: a list of @graph documents.
        article = article or not _ARTICLE_TYPES.isdisjoint(_ld_types(data, -1))
    return _PageKinds(
        thread=bool(types & _THREAD_TYPES), product=bool(types & _PRODUCT_TYPES), article=article
    )


class _Tree:
    """The elements under a root in document order, with their measured text."""

    __slots__ = (
        "article", "children", "chrome", "comments", "consent", "ctas", "dropped", "end",
        "fields", "footers", "forum", "headings", "link", "nodes", "panels", "parent", "product",
        "promos", "role_main", "scripts", "text",
    )  # fmt: skip

    def __init__(self) -> None:
        self.nodes: list[Tag] = []
        self.parent: list[int] = []
        self.children: list[list[int]] = []
        self.end: list[int] = []  # one past the last descendant, in document order
        self.text: list[int] = []  # characters of text in the subtree
        self.link: list[int] = []  # of which inside <a>
        self.chrome: list[bool] = []  # named like chrome (class or id)
        self.comments: list[bool] = []  # named like comments (chrome unless a thread)
        self.consent: list[int] = []  # consent-manager blocks, dropped whatever their share
        self.ctas: list[int] = []  # named like chrome by "cta" alone (see _CTA_WORD)
        self.footers: list[int] = []  # <footer>s inside the content (see _FOOTERS)
        self.promos: list[int] = []  # named like chrome by "promo" alone (see _SOFT_WORDS)
        self.forum = False  # schema.org says this is a discussion or Q&A page
        self.product = False  # ... or a product's page
        self.article = False  # ... or an article (Open Graph, JSON-LD: _page_kinds)
        self.headings: list[int] = []
        self.role_main = -1  # the first element with role="main"
        self.dropped: list[Tag] = []
        self.scripts: list[Tag] = []  # JSON-LD in the body
        self.fields: list[int] = []  # elements holding a form field, in document order
        self.panels: set[str] = set()  # ids that toggles (before them) name in aria-controls

    def weight(self, i: int) -> float:
        """Text that counts towards being content: link text counts for less."""
        return self.text[i] - (1.0 - _LINK_WEIGHT) * self.link[i]

    def drop(self, i: int) -> None:
        """Detach element i later and take its text out of its ancestors' now."""
        self.dropped.append(self.nodes[i])
        text, link = self.text[i], self.link[i]
        parent = self.parent[i]
        while parent >= 0:
            self.text[parent] -= text
            self.link[parent] -= link
            parent = self.parent[parent]
        self.text[i] = self.link[i] = 0


def _measure(
    root: Tag, muted: frozenset[str], wrappers: frozenset[int], toggles: frozenset[str]
) -> _Tree:
    """Measure the elements under root; `wrappers` are ids of the landmarks' ancestors."""
    tree = _Tree()
    nodes, children, end, text, link = tree.nodes, tree.children, tree.end, tree.text, tree.link
    parents, chrome, comments = tree.parent, tree.chrome, tree.comments
    nodes.append(root)
    parents.append(-1)
    children.append([])
    end.append(0)
    text.append(0)
    link.append(0)
    chrome.append(False)
    comments.append(False)
    content = 1 if root.name in _SECTIONING else 0
    for scope in (root, root.parent):  # <body itemtype=...> or <html itemtype=...>
        if isinstance(scope, Tag) and _FORUM_TYPES.search(str(scope.get("itemtype") or "")):
            tree.forum = True
    stack: list[tuple[Iterator[PageElement], int, int]] = [(iter(root.contents), 0, 0)]
    while stack:
        contents, index, flags = stack[-1]
        for node in contents:
            if not isinstance(node, Tag):
                if type(node) in _TEXT_TYPES:
                    text[index] += len(node.strip())  # type: ignore[attr-defined]
                continue
            name = node.name
            controls = node.attrs.get("aria-controls")
            if isinstance(controls, str):
                tree.panels.update(controls.split())
            if name in muted and id(node) not in wrappers:
                if name in _FIELDS and node.get("type") != "hidden":
                    tree.fields.append(index)
                if name in _DETACHED:
                    tree.dropped.append(node)
                elif name == "script" and node.get("type") == "application/ld+json":
                    tree.forum = tree.forum or _FORUM_TYPES.search(node.get_text()) is not None
                    tree.scripts.append(node)
                continue
            itemtype = node.attrs.get("itemtype")
            if itemtype is not None:
                if _FORUM_TYPES.search(str(itemtype)):
                    tree.forum = True
                elif _PRODUCT_ITEMTYPE.search(str(itemtype)):
                    tree.product = True
            verdict = _verdict(node, name, content > 0, tree.panels, toggles)
            ident = node.attrs.get("id")
            if index and isinstance(ident, str) and _USER_MENU.match(ident):
                chrome[index] = True  # vBulletin 3's user column (see _USER_MENU)
            child = len(nodes)
            nodes.append(node)
            parents.append(index)
            children.append([])
            end.append(0)
            text.append(0)
            link.append(0)
            chrome.append(verdict is not _KEEP)
            comments.append(verdict is _COMMENTS)
            if verdict is _CONSENT:
                tree.consent.append(child)
            elif verdict is _CTA:
                tree.ctas.append(child)
            elif verdict is _FOOTER:
                tree.footers.append(child)
            elif verdict is _PROMO:
                tree.promos.append(child)
            if name in _HEADINGS:
                tree.headings.append(child)
            elif tree.role_main < 0 and node.attrs.get("role") == "main":
                tree.role_main = child
            children[index].append(child)
            sectioning = 1 if name in _SECTIONING else 0
            content += sectioning
            stack.append((iter(node.contents), child, sectioning))
            break
        else:
            stack.pop()
            content -= flags
            end[index] = len(nodes)
            if nodes[index].name == "a":
                link[index] = text[index]
            if stack:
                parent = stack[-1][1]
                text[parent] += text[index]
                link[parent] += link[index]
    return tree


def _comment_share(tree: _Tree) -> float:
    """The share of the page's (weighted) text inside elements named like comments."""
    page = tree.weight(0)
    if page <= 0:
        return 0.0
    total = 0.0
    i = 1
    nodes, end, comments = tree.nodes, tree.end, tree.comments
    while i < len(nodes):
        if comments[i]:
            total += tree.weight(i)
            i = end[i]
            continue
        i += 1
    return total / page


def _drop_chrome(tree: _Tree, keep: set[int]) -> None:
    """Drop elements named like chrome unless they hold much of the page or the content."""
    nodes, end, chrome = tree.nodes, tree.end, tree.chrome
    # A thread without schema.org markup: its posts (named like comments) hold most of
    # the page's text, where an article's comments follow a body of its own (however long
    # the discussion under a page that says it is an article, when it has that body).
    if not tree.forum:
        share = _comment_share(tree)
        own = (1.0 - share) * tree.weight(0)
        if share >= _THREAD_SHARE and not (tree.article and own >= _ARTICLE_BODY):
            tree.forum = True
    # Shares are of the page, or of the landmark (main, the article) the element is in.
    scopes = sorted(keep)
    totals = {k: tree.weight(k) for k in scopes}
    page = tree.weight(0)
    # A thread's posts are its articles, each too short to measure its furniture by (the
    # poster's details, reaction counts): shares there are of the page.
    thread_posts = tree.forum and len(scopes) > 1
    # Siblings of one class are judged together: a page builder's ten "cta" blocks of
    # text in a row are the page, however small each one is (a menu's items are links).
    groups: dict[tuple[int, str], float] = {}
    for i in range(1, len(nodes)):
        if chrome[i] and tree.link[i] < _GROUP_LINKS * tree.text[i]:
            # Unclassed, only hidden blocks group (React streams a page in hidden divs).
            name = _class(nodes[i]) or ("[hidden]" if "hidden" in nodes[i].attrs else "")
            if name:
                key = (tree.parent[i], name)
                groups[key] = groups.get(key, 0.0) + tree.weight(i)
    past = 0  # one past the last dropped banner: a banner inside it went with it
    for i in tree.consent:
        if i >= past and not any(i <= k < end[i] for k in scopes):
            tree.drop(i)
            past = end[i]
    i = 1
    while i < len(nodes):
        if (
            chrome[i]
            and not (tree.comments[i] and tree.forum)
            and not any(i <= k < end[i] for k in scopes)
        ):
            inside = [k for k in scopes if k < i < end[k]]
            total = totals[inside[-1]] if inside and not thread_posts else page
            name = _class(nodes[i]) or ("[hidden]" if "hidden" in nodes[i].attrs else "")
            weight = max(tree.weight(i), groups.get((tree.parent[i], name), 0.0))
            if weight < _CHROME_SHARE * total:
                tree.drop(i)
                i = end[i]
                continue
        i += 1


def _drop_trailing_footers(tree: _Tree, keep: set[int]) -> None:
    """Drop the page footers (`<footer>`, role=contentinfo) after the last landmark, whatever
    their share: a shop's footer holding its policies' full text is no less chrome for it.

    The share rule (_drop_chrome) guards against markup errors that nest the page in an
    unclosed header or footer; a footer that starts after the `<main>` ends holds none of it.
    """
    if not keep:
        return
    nodes, end = tree.nodes, tree.end
    after = max(end[k] for k in keep)
    i = after
    while i < len(nodes):
        tag = nodes[i]
        role = tag.attrs.get("role")
        if tag.name == "footer" or (isinstance(role, str) and role.strip() == "contentinfo"):
            if tree.text[i]:
                tree.drop(i)
            i = end[i]
            continue
        i += 1


def _mark_forms(tree: _Tree) -> None:
    """Forms with fields (sign-up, contact, quote requests) are chrome, not content."""
    if not tree.fields:
        return
    chrome = tree.chrome
    page = tree.weight(0)
    for i, tag in enumerate(tree.nodes):
        if (
            tag.name == "form"
            and not chrome[i]
            and tree.weight(i) < _FORM_SHARE * page
            and _holds_field(tree, i)
        ):
            chrome[i] = True


def _mark_product_chrome(tree: _Tree) -> None:
    """On a product page, reviews, prices and cart widgets are chrome too."""
    chrome = tree.chrome
    for i, tag in enumerate(tree.nodes):
        if not chrome[i]:
            words = _words(tag)
            if words and _PRODUCT_CHROME_WORDS.search(words):
                chrome[i] = True


def _drop_tail_sections(tree: _Tree, root: int) -> None:
    """Drop sections headed like chrome ("Related posts", "Share this", "Leave a reply").

    The heading goes with the siblings after it up to the next heading of its rank or
    higher, unless that run is a large part of the content.
    """
    nodes, end = tree.nodes, tree.end
    budget = _TAIL_SHARE * tree.weight(root)
    for h in tree.headings:
        if not root < h < end[root] or tree.text[h] == 0 or tree.text[h] > 80:
            continue
        heading = nodes[h]
        title = heading.get_text().strip()
        if heading.parent is None or (
            _CHROME_HEADING.match(title) is None
            and not (tree.product and _PRODUCT_TAIL_HEADING.match(title))
        ):
            continue
        rank = int(heading.name[1])
        parent = tree.parent[h]
        run = [h]
        for sibling in tree.children[parent]:
            if sibling <= h:
                continue
            name = nodes[sibling].name
            if name in _HEADINGS and int(name[1]) <= rank:
                break
            run.append(sibling)
        if sum(tree.weight(i) for i in run) <= budget:
            for i in run:
                if tree.text[i] or nodes[i].name not in _HEADINGS:
                    tree.drop(i)


def _common_ancestor(tree: _Tree, indexes: list[int]) -> int:
    first = indexes[0]
    if len(indexes) == 1:
        return first
    last = indexes[-1]
    ancestor = tree.parent[first]
    while ancestor > 0 and tree.end[ancestor] <= last:
        ancestor = tree.parent[ancestor]
    return max(ancestor, 0)


def _pick_root(tree: _Tree, start: int) -> int:
    """The deepest element with most of `start`'s (weighted) text."""
    children = tree.children
    total = tree.weight(start)
    if total <= 0:
        return start
    need = _ROOT_SHARE * total
    current = start
    while True:
        best = -1
        best_text = -1.0
        for child in children[current]:
            if tree.nodes[child].name not in _CONTAINERS:
                continue
            own = tree.weight(child)
            if own > best_text:
                best, best_text = child, own
        if best < 0 or best_text < need:
            return current
        # Long documents: one section can hold most of the text; its siblings still count.
        if tree.weight(current) - best_text > _REST and best_text < _ROOT_ALL * tree.weight(
            current
        ):
            return current
        current = best


def _card_items(tree: _Tree, root: int) -> set[int]:
    """The items of card grids under the root (see _CARDS): inside them _drop_link_blocks
    keeps a block with one link (the item's title)."""
    nodes, text, link = tree.nodes, tree.text, tree.link
    need = _CARD_SHARE * text[root]
    items: set[int] = set()
    if need <= 0 or tree.forum:  # a thread's posts are not cards
        return items
    for parent in range(root, tree.end[root]):
        kids = tree.children[parent]
        if len(kids) < _CARDS:
            continue
        groups: dict[tuple[str, str], list[int]] = {}
        for kid in kids:
            if text[kid] > link[kid] > 0:
                groups.setdefault((nodes[kid].name, _class(nodes[kid])), []).append(kid)
        for group in groups.values():
            size = sum(text[k] for k in group)
            if len(group) >= _CARDS and need <= size <= _CARD_TEXT * len(group):
                items.update(group)
    return items


def _drop_repeats(tree: _Tree, root: int) -> None:
    """Drop an element that repeats its previous sibling word for word (a carousel's cloned
    slides, a ticker's copies): same tag and class, same text and link lengths, same text."""
    nodes, end, text, link = tree.nodes, tree.end, tree.text, tree.link
    skip: dict[int, int] = {}  # dropped element -> one past its subtree
    i = root
    stop = end[root]
    while i < stop:
        if i in skip:
            i = skip[i]
            continue
        prev = -1
        for kid in tree.children[i]:
            if (
                prev >= 0
                and text[kid] >= _REPEAT_TEXT
                and text[kid] == text[prev]
                and link[kid] == link[prev]
                and nodes[kid].name == nodes[prev].name
                and _class(nodes[kid]) == _class(nodes[prev])
                and nodes[kid].get_text() == nodes[prev].get_text()
            ):
                skip[kid] = end[kid]
                tree.drop(kid)
                continue
            prev = kid
        i += 1


def _drop_link_blocks(tree: _Tree, root: int, cards: set[int], *, said: bool) -> None:
    """Detach link-dense blocks (menus, tag lists, "read next") under the root.

    Dense is relative to the root: on a listing, where the content is links to the items,
    only blocks far denser in links than the page around them go. `said`: the page says
    it is an article or a thread; `cards`: the root's grid items (_card_items).
    """
    nodes, end, text, link = tree.nodes, tree.end, tree.text, tree.link
    density = link[root] / text[root] if text[root] else 0.0
    if density + _DENSER > 1.0:
        return
    # A grid of cards is a listing by its markup, and so is a page that does not say it is
    # an article or a thread (`said`): its filters and category lists, as dense in links
    # as its items, are part of it; only the far denser blocks go.
    listing = bool(cards) or not said
    threshold = max(_LINK_DENSITY, density + (_DENSER_LIST if listing else _DENSER))
    if threshold > 1.0:
        return
    anchors = [0]  # anchors[i]: <a> elements before element i in document order
    if cards:
        for tag in nodes:
            anchors.append(anchors[-1] + (tag.name == "a"))
    card_end = -1  # one past the card the walk is in
    i = root + 1
    stop = end[root]
    while i < stop:
        if i in cards:
            card_end = end[i]
        tag = nodes[i]
        total = text[i]
        if tag.name in _BLOCKS and total:
            own = total - link[i]
            if (
                link[i] >= threshold * total
                and own < _SHORT_TEXT
                # An item's one link is its title; its tag lists and menus still go.
                and not (i < card_end and anchors[end[i]] - anchors[i] <= 1)
            ):
                tree.dropped.append(tag)
                i = end[i]
                continue
        i += 1


def _whole_document(
    soup: BeautifulSoup, body: Tag, tree: _Tree, wrappers: frozenset[int], toggles: frozenset[str]
) -> tuple[Tag, _Tree]:
    """A stray `</body>` or `</html>` leaves the rest of the page after the body (lxml puts
    it in a second <html>): when the body holds less than half of the document's text, the
    whole document is measured, as the text walk reads it."""
    if body is soup:
        return body, tree
    html = body.parent
    after = [node for node in body.next_siblings if isinstance(node, Tag)]
    if isinstance(html, Tag) and html is not soup:
        after.extend(node for node in html.next_siblings if isinstance(node, Tag))
    if not after:
        return body, tree
    whole = _measure(soup, _MUTED, wrappers, toggles)
    if tree.text[0] * 2 < whole.text[0]:
        return soup, whole
    return body, tree


def _descriptions(tree: _Tree, root: int, cards: set[int]) -> list[int]:
    """Prose outside the root of a listing: a shop's category description, an SEO text,
    often after the product grid and outside its `<main>`.

    Only on a page whose root is a grid of cards (_card_items) and dense in links: the
    blocks outside it, not named like chrome, with _PROSE characters of text of which at
    most _PROSE_LINKS is links, are content too.
    """
    nodes, end, text, link, chrome = tree.nodes, tree.end, tree.text, tree.link, tree.chrome
    if link[root] < _LIST_DENSITY * text[root] or not cards:
        return []
    found: list[int] = []
    i = 1
    while i < len(nodes):
        if i == root:
            i = end[i]
            continue
        # A dropped element's text is already 0 (_Tree.drop).
        if chrome[i] or text[i] < _PROSE:
            i = end[i] if i > root or end[i] <= root else i + 1
            continue
        # Not an ancestor of the root.
        if (end[i] <= root or i > root) and link[i] <= _PROSE_LINKS * text[i]:
            found.append(i)
            i = end[i]
            continue
        i += 1
    return found


def _outermost(tree: _Tree, indexes: list[int]) -> int:
    """How many of these elements (in document order) hold text and are not inside
    another of them."""
    count, past = 0, 0
    for i in indexes:
        if i >= past and tree.text[i]:
            count += 1
            past = tree.end[i]
    return count


def _cta_page(tree: _Tree) -> bool:
    """A page made of "cta" blocks: _CARDS or more (not one inside another), each small
    enough to go as chrome, together holding _CTA_SHARE of the page's text or more (a
    page builder's sections on a page whose CMS says "article" of every page)."""
    page = tree.weight(0)
    count, total, past = 0, 0.0, 0
    for i in tree.ctas:
        if i >= past and tree.text[i]:
            past = tree.end[i]
            weight = tree.weight(i)
            if weight < _CHROME_SHARE * page:
                count += 1
                total += weight
    return count >= _CARDS and total >= _CTA_SHARE * page


def _keep_soft_chrome(tree: _Tree) -> None:
    """Once the page's kind is known, keep the blocks named like chrome only by a word
    that names content on some pages: "cta", "promo", a <footer> inside the content."""
    keep: list[int] = []
    if tree.ctas and not tree.product and (not tree.article or _cta_page(tree)):
        keep += tree.ctas  # a landing page's sections (a product's "add to cart" goes)
    if len(tree.footers) >= _FOOTERS:
        keep += tree.footers  # a listing's cards, each with its byline in a <footer>
    if not tree.product and not tree.article and _outermost(tree, tree.promos) >= _CARDS:
        keep += tree.promos  # a set of promo cards (a services grid), not one banner
    for i in keep:
        tree.chrome[i] = False


def _holds_field(tree: _Tree, i: int) -> bool:
    """A form field (not a hidden input) is inside element i."""
    first = bisect_left(tree.fields, i)
    return first < len(tree.fields) and tree.fields[first] < tree.end[i]


def _lede(tree: _Tree, root: int) -> list[int]:
    """The blocks between the page's title (its first `<h1>`) and the root that open the
    content: a standfirst, a lede, a hero's subtitle, left out when the body alone held
    enough of the text to be the root.

    From the root up: the siblings before it (not named like chrome, not dropped), when
    they are prose (at most _LEDE_LINKS links) and all such blocks hold at most _LEDE_SHARE
    of the root's text; the climb stops at the first level that does not pass.
    """
    nodes, text, link, chrome = tree.nodes, tree.text, tree.link, tree.chrome
    # The title: the first <h1>, before the root; banners above it are not the content's.
    title = next((h for h in tree.headings if nodes[h].name == "h1" and text[h]), -1)
    if not 0 < title < root:
        return []
    budget = _LEDE_SHARE * tree.weight(root)
    found: list[int] = []
    child = root
    parent = tree.parent[root]
    while parent >= 0:
        before = [
            k
            for k in tree.children[parent]
            if title < k < child
            and text[k] >= _LEDE_TEXT
            and not chrome[k]
            and not _holds_field(tree, k)
        ]
        size = sum(text[k] for k in before)
        if size:
            if size > budget or sum(link[k] for k in before) > _LEDE_LINKS * size:
                break
            budget -= size
            found.extend(before)
        if nodes[parent].name == "body":
            break
        child, parent = parent, tree.parent[parent]
    return found


def _drop_read_times(tree: _Tree, root: int) -> None:
    """Drop an element whose whole text is a reading time ("5 min read") or a control's label
    ("Add to cart", "Loading..."), however named."""
    nodes, end, text = tree.nodes, tree.end, tree.text
    i = root + 1
    stop = end[root]
    while i < stop:
        if 0 < text[i] <= _READ_TIME_TEXT and (
            _READ_TIME.match(own := nodes[i].get_text().strip()) or _CONTROL_TEXT.match(own)
        ):
            tree.drop(i)
            i = end[i]
            continue
        i += 1


def main_content(soup: BeautifulSoup, main: Tag | None, articles: list[Tag]) -> list[Tag]:
    """The content roots, with boilerplate detached from the tree (which this mutates)."""
    body = soup.body if soup.body is not None else soup
    # A <button> or <select> left open by a markup error holds the rest of the page: one
    # around the <main> or an <article> is a wrapper, not a control to detach.
    wrappers = frozenset(
        id(parent)
        for tag in ([main] if main is not None else articles)
        for parent in tag.parents
        if parent.name in _MUTED
    )
    toggles = frozenset(
        str(field.get("id"))
        for field in body.find_all("input", attrs={"type": ("radio", "checkbox")})
    )
    tree = _measure(body, _MUTED, wrappers, toggles)
    body, tree = _whole_document(soup, body, tree, wrappers, toggles)
    if tree.text[0] < _NOSCRIPT_PAGE:
        # Pages that render with script often put their text for crawlers in <noscript>.
        noscript = _measure(body, _MUTED - {"noscript"}, wrappers, toggles)
        if noscript.text[0] >= tree.text[0] + _NOSCRIPT_PAGE:
            tree = noscript
            for tag in body.find_all("noscript"):
                tag.name = "div"  # so that the text walk and markdown read it too
    kinds = _page_kinds(soup, tree.scripts)
    tree.forum = tree.forum or kinds.thread
    tree.product = tree.product or kinds.product
    tree.article = kinds.article
    _keep_soft_chrome(tree)
    _mark_forms(tree)
    if tree.product:
        _mark_product_chrome(tree)
    index = {id(tag): i for i, tag in enumerate(tree.nodes)}
    landmarks = [main] if main is not None else articles
    keep = {i for i in (index.get(id(tag)) for tag in landmarks) if i is not None}
    if main is None and tree.role_main >= 0:
        keep = {tree.role_main}  # Sphinx: <div class="body" role="main">
    _drop_trailing_footers(tree, keep)
    _drop_chrome(tree, keep)
    body_text = tree.weight(0)
    root = -1
    if keep:
        # <main>, or the one <article>, or the element holding all outermost articles
        # (a blog's front page, a forum thread): when it holds a fair share of the text.
        root = _common_ancestor(tree, sorted(keep))
        if tree.weight(root) < _LANDMARK_SHARE * body_text:
            root = -1
    if root < 0:
        root = _pick_root(tree, 0)
    _drop_tail_sections(tree, root)
    _drop_repeats(tree, root)
    cards = _card_items(tree, root)
    extra = _descriptions(tree, root, cards)
    extra.extend(k for k in _lede(tree, root) if k not in extra)
    # A page that says it is an article or a thread is not a listing (a shop's category
    # page often says it is a product).
    _drop_link_blocks(tree, root, cards, said=tree.forum or tree.article)
    _drop_read_times(tree, root)  # after: a card's reading time is not what keeps its link
    for tag in tree.dropped:
        tag.extract()
    return [tree.nodes[i] for i in sorted([root, *extra])]
