"""service.crawl.maincontent: what only_main_content keeps and drops, page by page kind."""

from __future__ import annotations

from service.crawl.parser import ParseOptions, parse_page

PARA = "Plenty of words in a paragraph that reads like the content of the page. " * 4


def main_text(html: str, url: str = "https://example.org/a") -> str:
    options = ParseOptions(formats=frozenset({"text"}), only_main_content=True)
    text = parse_page(html.encode(), url, options).text
    assert text is not None
    return text


def test_site_footer_goes_and_footnotes_stay() -> None:
    html = f"""<body><main><section><h1>Doc</h1><p>{PARA}</p>
      <aside class="footnote" role="note"><p>The footnote text.</p></aside>
      <aside class="sidebar"><p>Sidebar junk</p></aside></section></main>
      <div class="footer">© Someone. Found a bug?</div></body>"""
    text = main_text(html)
    assert "The footnote text." in text
    assert "Sidebar junk" not in text
    assert "Found a bug?" not in text


def test_role_main_is_the_content_root() -> None:
    html = f"""<body><div class="related" role="navigation"><a href="/">Prev</a></div>
      <div class="document"><div class="body" role="main"><h1>T</h1><p>{PARA}</p></div>
      <div class="sphinxsidebar"><p>Table of contents with words</p></div></div></body>"""
    text = main_text(html)
    assert text.startswith("T\n\nPlenty")
    assert "Table of contents" not in text
    assert "Prev" not in text


def test_docbook_navigation_tables_go() -> None:
    html = f"""<body><div class="navheader"><table summary="Navigation header"><tr>
      <td><a href="p.html">Prev</a></td><td><a href="u.html">Up</a></td>
      <td><a href="n.html">Next</a></td></tr></table></div>
      <div class="refentry" id="SQL-SELECT"><h2>SELECT</h2><p>{PARA}</p>
      <div class="refsect2" id="SQL-FOR-UPDATE-SHARE"><h3>The Locking Clause</h3>
      <p>{PARA}</p></div></div>
      <div class="navfooter"><table summary="Navigation footer"><tr>
      <td><a href="p.html">Prev</a></td></tr></table></div></body>"""
    text = main_text(html)
    assert "Prev" not in text and "Next" not in text
    assert "The Locking Clause" in text  # an id made from a title is not chrome


def test_a_wrapper_named_like_chrome_is_still_the_page() -> None:
    html = f"""<body><div id="page" class="site has-sidebar"><h1>Title</h1><p>{PARA}</p>
      <div class="share-buttons"><a href="/s">Share</a></div></div></body>"""
    text = main_text(html)
    assert PARA.strip()[:40] in text
    assert "Share" not in text


def test_a_listing_keeps_its_links() -> None:
    cards = "".join(
        f'<div class="card"><a href="/item/{i}">Item number {i} with a long title</a></div>'
        for i in range(30)
    )
    html = f"""<body><nav><a href="/">Home</a><a href="/b">Blog</a></nav>
      <div class="content"><h1>All items</h1>{cards}</div></body>"""
    text = main_text(html)
    assert "Item number 0 with" in text and "Item number 29 with" in text
    assert "Home" not in text


def test_chrome_headed_sections_after_the_content_go() -> None:
    html = f"""<body><article><h1>Post</h1><p>{PARA}</p><p>{PARA}</p>
      <h2>Related posts</h2><ul><li><a href="/x">Other post</a></li></ul></article></body>"""
    text = main_text(html)
    assert "Related posts" not in text and "Other post" not in text


def test_a_popular_section_of_the_content_stays() -> None:
    # "Popular posts" is a box of links; "Popular types of videos" is a chapter of the post.
    html = f"""<body><article><h1>Video</h1><p>{PARA}</p><p>{PARA}</p><p>{PARA}</p>
      <h2>Popular types of videos</h2><p>Explainer videos show how a product works.</p>
      <h2>Popular posts</h2><ul><li><a href="/x">Other post</a></li></ul></article></body>"""
    text = main_text(html)
    assert "Explainer videos show how a product works." in text
    assert "Other post" not in text


def test_threads_keep_their_comments() -> None:
    posts = "".join(f'<div class="comment"><p>Reply {i}: {PARA}</p></div>' for i in range(4))
    thread = f"""<body itemscope itemtype="https://schema.org/DiscussionForumPosting">
      <h1>Question</h1><p>{PARA}</p>{posts}</body>"""
    assert "Reply 3:" in main_text(thread)
    article = f"""<body><article><h1>Post</h1><p>{PARA}</p><p>{PARA}</p><p>{PARA}</p>
      </article><div class="comments"><p>Nice post!</p></div></body>"""
    assert "Nice post!" not in main_text(article)


def test_text_for_crawlers_in_noscript_is_used_when_the_page_has_none() -> None:
    html = f"""<body><div id="app"></div><noscript><h1>Thread</h1><p>{PARA}</p>
      <p>{PARA}</p></noscript></body>"""
    assert main_text(html).startswith("Thread\n\nPlenty")


def test_a_thread_without_schema_keeps_its_posts() -> None:
    # The posts are named like comments and hold most of the page: they are the content.
    posts = "".join(f'<div class="comment"><p>Reply {n}: {PARA}</p></div>' for n in range(3))
    html = f"""<body><div class="nav"><a href="/">Home</a></div>
      <div class="story"><h1>Thread title</h1>{posts}</div></body>"""
    text = main_text(html)
    assert "Reply 0:" in text and "Reply 2:" in text


def test_an_article_drops_its_comments() -> None:
    body = "".join(f"<p>{PARA}</p>" for _ in range(4))
    html = f"""<body><div class="story"><h1>Article</h1>{body}
      <div class="comments"><p>First comment: {PARA[:80]}</p></div></div></body>"""
    text = main_text(html)
    assert "Article" in text
    assert "First comment" not in text


PRODUCT_LD = '<script type="application/ld+json">{"@type": "Product", "name": "Lamp"}</script>'


def test_a_product_page_drops_its_reviews_section() -> None:
    html = f"""<head>{PRODUCT_LD}</head><body><div class="pdp"><h1>Lamp</h1>
      <p>{PARA}</p><p>{PARA}</p><p>{PARA}</p>
      <div><h2>Customer reviews</h2><p>Great lamp, five stars, would buy again.</p></div>
      </div></body>"""
    text = main_text(html)
    assert "Plenty of words" in text
    assert "Great lamp" not in text


def test_a_product_page_drops_price_and_cart_blocks() -> None:
    html = f"""<body><div itemscope itemtype="https://schema.org/Product"><h1>Lamp</h1>
      <p>{PARA}</p><div class="product-price">$49.00 Was $59.00</div>
      <div class="add-to-cart"><label>Quantity</label></div><p>{PARA}</p></div></body>"""
    text = main_text(html)
    assert "Plenty of words" in text
    assert "$49.00" not in text and "Quantity" not in text


def test_price_blocks_stay_on_other_pages() -> None:
    html = f"""<body><div class="post"><h1>Pricing</h1><p>{PARA}</p>
      <div class="price">Our plan costs $49.00 a month.</div></div></body>"""
    assert "$49.00" in main_text(html)


def test_bylines_and_calls_to_action_go() -> None:
    html = f"""<head><meta property="og:type" content="article"></head>
      <body><div class="post"><h1>Title</h1>
      <div class="post-byline">Written by Someone, 14 min read</div><p>{PARA}</p>
      <div class="cta-box"><p>Get a free quote today</p></div></div></body>"""
    text = main_text(html)
    assert "Plenty of words" in text
    assert "Written by" not in text and "free quote" not in text


def test_a_threads_poster_details_go_however_short_the_post() -> None:
    posts = "".join(
        f"""<article class="message message--post"><div class="message-user">
        <h4>poster{n}</h4><div class="message-userExtras"><dl><dt>Messages</dt><dd>1,204</dd>
        <dt>Reaction score</dt><dd>2,311</dd><dt>Location</dt><dd>Somewhere far</dd></dl>
        </div></div><div class="message-content"><p>Short reply number {n} here.</p></div>
        </article>"""
        for n in range(4)
    )
    html = f"""<html><head><script type="application/ld+json">
      {{"@type": "DiscussionForumPosting", "headline": "T"}}</script></head><body>
      <div class="thread"><h1>Thread title</h1>{posts}</div></body></html>"""
    text = main_text(html)
    assert "Short reply number 3 here." in text
    assert "Reaction score" not in text


def test_a_heros_standfirst_above_the_body_stays() -> None:
    lede = "The standfirst sums the story up in a sentence or two before the body starts. "
    html = f"""<body><div class="banner"><p>An official notice that runs above every page of
      this site, long enough to be a paragraph of its own if it were kept.</p></div>
      <div class="page"><h1>Title</h1><div class="standfirst"><p>{lede * 2}</p></div>
      <div class="body">{"".join(f"<p>{n}. {PARA}</p>" for n in range(6))}</div></div>
      </body>"""
    text = main_text(html)
    assert "The standfirst sums" in text and PARA.strip()[:40] in text
    assert "official notice" not in text


def test_a_long_discussion_under_an_article_is_still_its_comments() -> None:
    comments = "".join(
        f"""<li class="comment {("even", "odd")[n % 2]} depth-1" id="comment-{n}"><p>Reader {n}
        writes a long reply about the post, one of many that together run longer than the
        article itself does.</p></li>"""
        for n in range(20)
    )
    html = f"""<html><head><meta property="og:type" content="article"></head><body>
      <main><article><h1>Post</h1><p>1. {PARA}</p><p>2. {PARA}</p><p>3. {PARA}</p></article>
      <ol class="commentlist">{comments}</ol></main></body></html>"""
    text = main_text(html)
    assert "3. Plenty of words" in text
    assert "Reader 7 writes" not in text


def test_a_reading_time_goes_and_a_recipes_time_stays() -> None:
    html = f"""<body><div class="post"><h1>Title</h1><div><span>7 min read</span></div>
      <p>{PARA}</p><p>Bake for</p><p>10 minutes</p><p>{PARA[:90]}</p></div></body>"""
    text = main_text(html)
    assert "Plenty of words" in text and "10 minutes" in text
    assert "min read" not in text


def test_a_form_with_fields_goes() -> None:
    html = f"""<body><div class="post"><h1>Title</h1><p>{PARA}</p><p>{PARA}</p>
      <form action="/lead"><h3>Talk to our experts</h3><input name="email">
      <textarea name="msg"></textarea></form></div></body>"""
    text = main_text(html)
    assert "Plenty of words" in text
    assert "Talk to our experts" not in text


def test_a_page_of_text_in_a_form_stays() -> None:
    # ASP.NET wraps the whole page in one <form>.
    html = f"""<body><form action="/"><input type="hidden" name="state">
      <input name="q"><h1>Title</h1><p>{PARA}</p></form></body>"""
    assert "Plenty of words" in main_text(html)


def test_repeated_blocks_named_like_chrome_are_judged_together() -> None:
    # A page builder's sections each hold a little of the page, together all of it.
    blocks = "".join(f'<div class="cta-section"><p>Part {n}: {PARA}</p></div>' for n in range(6))
    html = f"""<body><div class="page"><h1>Services</h1>{blocks}</div>
      <div class="cta-footer"><p>Call us now</p></div></body>"""
    text = main_text(html)
    assert "Part 0:" in text and "Part 5:" in text
    assert "Call us now" not in text


def test_hidden_siblings_are_judged_together() -> None:
    # React streams a page in hidden divs that script reveals: together they are the page.
    parts = "".join(f'<div hidden id="S:{n}"><p>Part {n}: {PARA}</p></div>' for n in range(5))
    html = f"""<body><div class="app">{parts}</div><div hidden><p>A closed dialog</p></div>
      </body>"""
    text = main_text(html)
    assert "Part 0:" in text and "Part 4:" in text


def test_elements_hidden_by_class_go() -> None:
    html = f"""<body><div class="post"><h1>Title</h1><h2 class="sr-only">Sort and filter</h2>
      <p>{PARA}</p><div class="d-none">Added to your cart!</div>
      <div class="tab-pane hidden"><p>Tab two: {PARA}</p></div>
      <div class="d-none d-md-block">Shown on desktops</div></div></body>"""
    text = main_text(html)
    assert "Sort and filter" not in text and "Added to your cart" not in text
    assert "Shown on desktops" in text
    assert "Tab two:" in text  # script shows what "hidden" hides


def test_forum_user_details_and_signatures_go() -> None:
    posts = "".join(
        f"""<article class="message"><div class="message-userDetails">
        <h5 class="userTitle">Premium Member</h5></div>
        <div class="message-body"><p>Post {n}: {PARA}</p></div>
        <div class="signature">My rig: a potato</div></article>"""
        for n in range(3)
    )
    html = f"<body><div class='thread'><h1>Thread</h1>{posts}</div></body>"
    text = main_text(html)
    assert "Post 0:" in text and "Post 2:" in text
    assert "Premium Member" not in text and "My rig" not in text


def test_a_recent_posts_section_after_the_article_goes() -> None:
    body = "".join(f"<p>{PARA}</p>" for _ in range(3))
    html = f"""<body><div class="entry"><h2>Title</h2>{body}
      <h2>Recent Posts</h2><p>Another story with a long enough title to count</p></div></body>"""
    text = main_text(html)
    assert "Plenty of words" in text
    assert "Another story" not in text


def test_a_consent_banner_goes_even_when_it_outweighs_the_page() -> None:
    # A short listing page whose OneTrust preference centre holds more text than the page:
    # chrome by any other name would be kept at that share, a consent manager's never.
    banner = "We process your data to deliver content and measure its delivery. " * 12
    html = f"""<body><div id="onetrust-consent-sdk"><div role="dialog"><h2>Your Privacy</h2>
      <p>{banner}</p></div></div>
      <div class="cmp-text"><h1>Tomato sauce recipes</h1><p>Our collection of recipes.</p>
      <p>Easy pork ragu, meatballs and chutney.</p></div></body>"""
    text = main_text(html)
    assert "Your Privacy" not in text
    assert "We process your data" not in text
    assert "Our collection of recipes." in text
    assert "Easy pork ragu, meatballs" in text


def test_a_card_grid_keeps_its_item_titles_and_drops_their_tag_lists() -> None:
    cards = "".join(
        f"""<div class="tile"><div class="tile-name"><a href="/p{n}">Helmet Vent Light
          Model {n} with a long name</a></div><span>$19.9{n}</span>
          <p>Bright, light and clipped to any vent in seconds.</p>
          <div class="tile-tags"><a href="/t/a">lights</a> <a href="/t/b">helmets</a></div>
          </div>"""
        for n in range(6)
    )
    html = f"""<body><div class="page"><h1>Lights</h1><p>6 Results</p>
      <div class="grid">{cards}</div></div></body>"""
    text = main_text(html)
    assert "Helmet Vent Light Model 3 with a long name" in " ".join(text.split())
    assert "$19.93" in text
    assert "helmets" not in text


def test_a_category_description_after_the_card_grid_stays() -> None:
    cards = "".join(
        f"""<li class="card"><a href="/p{n}">Charcoal grill model {n}</a>
          <span>In stock</span> <span>$19{n}.00</span></li>"""
        for n in range(8)
    )
    guide = "A charcoal grill gives the smoky taste that gas cannot match, and it lasts. " * 8
    html = f"""<body><nav><a href="/">Home</a></nav>
      <main><h1>Charcoal grills</h1><ul class="grid">{cards}</ul></main>
      <div class="bottom"><div class="description"><h2>Why a charcoal grill?</h2>
      <p>{guide}</p></div></div>
      <div class="footer-links"><a href="/a">About</a> <a href="/b">Contact</a></div></body>"""
    text = main_text(html)
    assert "Charcoal grill model 5" in text
    assert "Why a charcoal grill?" in text and "smoky taste" in text
    assert "Contact" not in text


def test_an_items_numbered_id_does_not_name_it_chrome() -> None:
    # "ad-listing-title-4325369879" is one record's id, not an ad; "ad-slot" is an ad.
    cards = "".join(
        f"""<li class="card"><a href="/l{n}"><h2 class="card-title"
          id="ad-listing-title-43253698{n}">Leather wallet number {n}, handmade</h2></a>
          <span>$2{n}.00</span> <span>Free shipping</span></li>"""
        for n in range(6)
    )
    html = f"""<body><main><h1>Handmade wallets</h1><p>1,000+ results</p>
      <ul class="grid">{cards}</ul><div id="ad-slot">Advertise with us here</div></main></body>"""
    text = main_text(html)
    assert "Leather wallet number 4, handmade" in text
    assert "Advertise with us" not in text


def test_a_card_grids_filter_lists_stay() -> None:
    # A grid of cards is a listing by its markup: its filters, as dense in links as its
    # items, are part of it.
    cards = "".join(
        f"""<li class="card"><a href="/i{n}">Vintage postcard of a harbour, {n}</a>
          <span>$6.8{n} each</span></li>"""
        for n in range(8)
    )
    filters = "".join(f'<li><a href="/f{n}">{n}0 to {n}9 years</a></li>' for n in range(5))
    html = f"""<body><main><h1>Postcards</h1>
      <div class="facets"><h2>Time period</h2><ul>{filters}</ul></div>
      <ul class="results">{cards}</ul></main></body>"""
    text = main_text(html)
    assert "Vintage postcard of a harbour, 6" in text
    assert "30 to 39 years" in text


def test_a_listings_link_lists_stay_unless_the_page_says_it_is_an_article() -> None:
    items = "".join(
        f'<li><a href="/r{n}">Quick air fryer recipe number {n}</a></li>' for n in range(10)
    )
    years = "".join(f'<li><a href="/y{n}">Year 20{n}0</a></li>' for n in range(4))
    body = f"""<body><main><h1>Air fryer recipes</h1>
      <p>Crispy food with little oil, from breakfast to dinner, for every day.</p>
      <ul class="posts">{items}</ul><div class="years"><ul>{years}</ul></div></main></body>"""
    assert "Year 2030" in main_text(body)
    article = '<head><meta property="og:type" content="article"></head>'
    assert "Year 2030" not in main_text(f"<html>{article}{body}</html>")


def test_a_cards_summary_in_an_aria_hidden_link_stays() -> None:
    # aria-hidden hides from screen readers only: the summary is shown; a footnote mark or
    # an icon link so marked still goes.
    cards = "".join(
        f"""<article class="river"><a aria-hidden="true" href="/n{n}"><img src="i.jpg"></a>
          <h2><a href="/n{n}">Headline number {n}</a></h2>
          <p><a aria-hidden="true" href="/n{n}">Summary {n}: what happened this week, told
          in a sentence long enough to read.</a></p></article>"""
        for n in range(5)
    )
    html = f"""<body><main><h1>Latest news</h1>{cards}
      <p>{PARA}<a aria-hidden="true" href="#fn1">1</a></p></main></body>"""
    text = main_text(html)
    assert "Summary 3: what happened this week" in " ".join(text.split())
    assert not text.rstrip().endswith("1")


def test_hidden_disclosure_panels_stay() -> None:
    # FAQ answers and tabs are hidden until clicked: the page's content all the same.
    html = f"""<body><main><h1>Pricing</h1><p>{PARA}</p>
      <h2>Questions</h2>
      <button aria-expanded="false" aria-controls="q1">Can I cancel?</button>
      <div id="q1" hidden><p>Yes, at any time from the billing page.</p></div>
      <div class="faq__answer" style="display: none"><p>Refunds take five days.</p></div>
      <div role="tabpanel" aria-hidden="true"><p>The yearly plan costs less.</p></div>
      <div style="display:none"><p>A closed popup offering a discount.</p></div>
      </main></body>"""
    text = main_text(html)
    assert "Yes, at any time" in text
    assert "Refunds take five days." in text
    assert "The yearly plan costs less." in text
    assert "A closed popup" not in text


def test_a_button_left_open_around_the_main_is_not_detached() -> None:
    # An unclosed menu <button> in the header swallows the page that follows it.
    html = f"""<body><header class="header"><div class="menu-button-container">
      <button class="menu-button">Menu<main><h1>Plants</h1><p>{PARA}</p></main>
      </button></div></header><button>Subscribe</button></body>"""
    text = main_text(html)
    assert text.startswith("Plants\n\nPlenty of words")
    assert "Subscribe" not in text


def test_quote_expand_toggles_go() -> None:
    # XenForo folds long quotes behind a "Click to expand..." link (two markups of it).
    posts = "".join(
        f"""<article class="message"><div class="message-body">
        <div class="bbCodeBlock bbCodeQuote"><blockquote class="quoteContainer">
        <div class="quote">Quoted words {n}.</div><div class="quoteExpand">Click to expand...</div>
        </blockquote><div class="bbCodeBlock-expandLink"><a>Click to expand...</a></div></div>
        <p>Post {n}: {PARA}</p></div></article>"""
        for n in range(3)
    )
    text = main_text(f'<body><div class="p-body">{posts}</div></body>')
    assert "Quoted words 1." in text and "Post 2:" in text
    assert "Click to expand" not in text


def test_a_carousels_cloned_slides_go() -> None:
    slide = '<div class="slide"><h3>Brainstorm to breakthrough</h3><p>Teams build faster.</p></div>'
    html = f"""<body><main><h1>Product</h1><p>{PARA}</p>
      <div class="track">{slide}{slide}{slide}</div>
      <p>Step one.</p><p>Step one.</p></main></body>"""
    text = main_text(html)
    assert text.count("Brainstorm to breakthrough") == 1
    assert text.count("Step one.") == 2  # short repeats are the text's own


def test_forum_post_profiles_go() -> None:
    # phpBB: each post's author block (rank, post count, join date) beside its body.
    posts = "".join(
        f"""<div class="post has-profile" id="p{n}"><div class="inner">
        <dl class="postprofile"><dt>Author {n}</dt><dd class="profile-posts">Posts: 138</dd>
        <dd class="profile-joined">Joined: 4. Jul 2012</dd></dl>
        <div class="postbody"><div class="content">Post {n}: {PARA}</div></div></div></div>"""
        for n in range(3)
    )
    text = main_text(f'<body><div class="page-body">{posts}</div></body>')
    assert "Post 0:" in text and "Post 2:" in text
    assert "Joined:" not in text and "Posts: 138" not in text


def test_post_meta_lines_go() -> None:
    # The line of a post's date, author and reading time above (or below) its text.
    html = f"""<body><article><h1>Title</h1>
      <div class="entry-meta"><span class="meta-item">June 3</span>
      <span class="meta-item meta-rtime">11 min read</span></div>
      <p>{PARA}</p><footer class="post-meta">Filed under: Notes</footer></article></body>"""
    text = main_text(html)
    assert text.startswith("Title\n\nPlenty of words")
    assert "11 min read" not in text and "Filed under" not in text


def test_sign_in_boxes_go() -> None:
    html = f"""<body><main><h1>Title</h1><p>{PARA}</p>
      <div class="login-prompt"><p>Log in to see your saved items and order history.</p></div>
      <div class="sign-in"><p>Members read more: sign in to your account.</p></div>
      </main></body>"""
    text = main_text(html)
    assert text.startswith("Title\n\nPlenty of words")
    assert "saved items" not in text and "Members read more" not in text


def test_page_furniture_goes() -> None:
    # Docs' "was this helpful?" and "edit this page", a back-to-top link, a copyright line.
    html = f"""<body><main><h1>Install</h1><p>{PARA}</p>
      <div class="feedback"><p>Was this page helpful? Yes / No</p></div>
      <div class="edit-this-page"><a href="/e">Improve this page on the forge</a></div>
      <div class="back-to-top"><a href="#top">Back to the top of the page</a></div>
      <p class="copyright">Copyright 2026 Example Corporation</p></main></body>"""
    text = main_text(html)
    assert text.startswith("Install\n\nPlenty of words")
    assert "helpful" not in text and "Improve this page" not in text
    assert "Back to the top" not in text and "Copyright" not in text


def test_dialogs_and_tooltips_go() -> None:
    html = f"""<body><main><h1>Desk</h1><p>{PARA}</p>
      <div role="dialog" aria-modal="true"><h2>Your cart</h2><p>Cart is empty.</p></div>
      <span role="tooltip">Ships in two days from our warehouse.</span></main></body>"""
    text = main_text(html)
    assert text.startswith("Desk\n\nPlenty of words")
    assert "Your cart" not in text and "Ships in two days" not in text


def test_field_labels_go_and_tab_labels_stay() -> None:
    # A field's label ("Quantity") is the form's; a CSS-only tab's label is its heading.
    html = f"""<body><main><h1>Desk</h1><p>{PARA}</p>
      <label for="qty">Quantity</label><input id="qty" type="number">
      <input type="radio" id="tab-specs" name="tabs" checked>
      <label for="tab-specs">Specifications</label><div><p>Steel frame.</p></div>
      </main></body>"""
    text = main_text(html)
    assert "Quantity" not in text
    assert "Specifications" in text and "Steel frame." in text


def test_content_after_a_stray_body_end_tag_is_measured() -> None:
    # A template closes the body and the document early: lxml puts the rest of the page
    # in a second <html>, which holds the article.
    html = f"""<html><body><div class="header"><a href="/">Home</a> Some header words</div>
      </body></html><div class="wrap"><h1>Title</h1><p>{PARA}</p><p>{PARA}</p></div>
      <div class="footer">Footer words here</div>"""
    text = main_text(html)
    assert PARA.strip()[:40] in text
    assert "Footer words" not in text


def test_footer_after_main_goes_whatever_its_share() -> None:
    policy = "Returns are accepted within thirty days of purchase with the receipt. " * 30
    html = f"""<body><header><a href="/">Shop</a></header>
      <main><h1>Wool Runner</h1><p>{PARA}</p></main>
      <div class="shopify-section"><footer><p>Help</p>
      <div class="policy"><h2>Refund policy</h2><p>{policy}</p></div></footer></div></body>"""
    text = main_text(html)
    assert text.startswith("Wool Runner")
    assert "Refund policy" not in text


def test_cta_sections_of_a_landing_page_stay_and_an_articles_cta_box_goes() -> None:
    sections = "".join(
        f"""<div class="cmp-cta"><h2>Service {n}</h2><p>We plan, build and run the
        service {n} for teams of every size, with support.</p></div>"""
        for n in range(3)
    )
    landing = f"""<html><head><meta property="og:type" content="website"></head><body>
      <div class="page"><h1>Our services</h1><p>{PARA}</p><p>{PARA}</p>{sections}</div>
      </body></html>"""
    text = main_text(landing)
    assert "Service 2" in text and "service 1 for teams" in text
    article = f"""<html><head><meta property="og:type" content="article"></head><body>
      <div class="post"><h1>A post</h1><p>{PARA}</p><p>{PARA}</p>
      <div class="inline-cta"><h3>Get a free quote</h3><p>Talk to our experts.</p></div>
      <p>{PARA}</p></div></body></html>"""
    text = main_text(article)
    assert "A post" in text and "free quote" not in text


def test_a_threads_guest_teaser_goes() -> None:
    # Invision's cGuestTeaser and Stack Exchange's bottom-notice after the posts.
    posts = "".join(
        f'<div class="comment ipsComment" id="c{n}"><p>Post {n}: {PARA}</p></div>' for n in range(3)
    )
    html = f"""<body><div class="cTopic" id="comments">{posts}
      <div class="ipsType_center cGuestTeaser"><h2>Create an account or sign in to
      comment</h2><p>You need to be a member in order to leave a comment</p></div>
      <h2 class="js-bottom-notice bottom-notice">Log in to answer this question.</h2>
      </div></body>"""
    text = main_text(html)
    assert "Post 0:" in text and "Post 2:" in text
    assert "member in order" not in text and "answer this question" not in text


def test_an_articles_footer_goes_and_a_listings_card_footers_stay() -> None:
    html = f"""<body><main><article><h1>Title</h1><p>{PARA}</p>
      <footer><p>Tagged planet-debian, notes</p><p>Last updated May 2</p></footer>
      </article></main></body>"""
    text = main_text(html)
    assert text.startswith("Title\n\nPlenty of words")
    assert "planet-debian" not in text and "Last updated" not in text
    cards = "".join(
        f"""<article class="post-card"><h3><a href="/p{n}">Post number {n}</a></h3>
        <p>A summary of post {n} that says what it is about.</p>
        <footer>Author {n} · March {n}, 2026</footer></article>"""
        for n in range(5)
    )
    text = main_text(f"<body><main><h1>Blog</h1>{cards}</main></body>")
    assert "Author 0 · March 0" in text and "Author 4 · March 4" in text


def test_control_labels_left_as_text_go() -> None:
    # A shop's "Add to cart" styled link, a card's "Quick shop", a spinner's caption.
    cards = "".join(
        f"""<div class="tile"><a href="/p/{n}">Product {n}</a><p>$1{n}.00 and a line</p>
        <a class="tile-link" href="/p/{n}#quick"><span>Quick Shop</span></a></div>"""
        for n in range(5)
    )
    html = f"""<body><main><h1>Desk</h1><p>{PARA}</p>
      <a class="link" href="/cart/add?id=1">Add to Cart</a>
      <div class="status">Loading...</div>{cards}</main></body>"""
    text = main_text(html)
    assert text.startswith("Desk\n\nPlenty of words")
    assert "Product 4" in text
    assert "Add to Cart" not in text and "Quick Shop" not in text and "Loading" not in text


def test_a_shops_also_viewed_sections_go() -> None:
    html = f"""<body><main><h1>Blender</h1><p>{PARA}</p><p>{PARA}</p><p>{PARA}</p>
      <h2>This is what customers who viewed this product bought</h2>
      <div><p>Another blender for a lower price</p></div>
      <h2>Keep exploring blenders</h2><div><p>Blenders for every kitchen</p></div>
      </main></body>"""
    text = main_text(html)
    assert text.startswith("Blender\n\nPlenty of words")
    assert "lower price" not in text and "every kitchen" not in text


def test_an_id_ending_in_a_chrome_word_names_chrome_but_not_a_headings_slug() -> None:
    html = f"""<body><main><h1>Title</h1><p>{PARA}</p>
      <div id="replay-signup"><h3>The Replay</h3><p>Every week in your inbox.</p></div>
      <h2 id="ninja-promo">6. Ninja Promo</h2><p>{PARA}</p>
      <h2><span class="mw-headline" id="Package_related">Package related</span></h2>
      <p>{PARA}</p></main></body>"""
    text = main_text(html)
    assert "Every week" not in text
    assert "6. Ninja Promo" in text and "Package related" in text


def test_a_set_of_promo_cards_stays_and_a_lone_promo_banner_goes() -> None:
    cards = "".join(
        f"""<div class="aem-GridColumn"><div class="cmp-promo"><a href="/s{n}"><h3>Service
        {n}</h3></a><p>We plan, build and run service {n} for teams of every size.</p>
        </div></div>"""
        for n in range(4)
    )
    banner = '<div class="promo-banner"><p>Download the 2026 threat report today.</p></div>'
    text = main_text(f"<body><main><h1>Our services</h1><p>{PARA}</p>{cards}</main></body>")
    assert "service 0 for teams" in text and "service 3 for teams" in text
    text = main_text(f"<body><main><h1>Our services</h1><p>{PARA}</p>{banner}</main></body>")
    assert text.startswith("Our services") and "threat report" not in text


def test_the_comments_under_a_qa_sites_posts_go_and_the_answers_stay() -> None:
    # Stack Exchange: a comment list under the question and under each answer.
    def post(kind: str, n: int) -> str:
        return f"""<div class="{kind}"><div class="s-prose js-post-body"><p>{kind} {n}:
          {PARA}</p></div><div class="comments js-comments-container"><ul
          class="comments-list js-comments-list"><li class="comment js-comment"><span
          class="comment-copy">A remark on {kind} {n} that is not the content.</span></li>
          </ul></div></div>"""

    answers = "".join(post("answer", n) for n in range(3))
    html = f"""<html><head><script type="application/ld+json">{{"@type": "QAPage"}}</script>
      </head><body><div id="mainbar" role="main">{post("question", 0)}
      <div id="answers">{answers}</div></div></body></html>"""
    text = main_text(html)
    assert "question 0:" in text and "answer 2:" in text
    assert "A remark" not in text


def test_xenforo_post_attribution_and_reaction_bars_go() -> None:
    posts = "".join(
        f"""<article class="message message--post"><div class="message-cell--main">
        <ul class="message-attribution-main listInline"><li>Oct 8, 2024 #{n}</li></ul>
        <div class="message-content"><div class="bbWrapper">Post {n}: {PARA}</div></div>
        <div class="reactionsBar js-reactionsList"><a href="/r">Reactions: someone</a></div>
        </div></article>"""
        for n in range(3)
    )
    html = f"""<html><head><script type="application/ld+json">
      {{"@type": "DiscussionForumPosting"}}</script></head><body><div class="block-body">
      {posts}</div></body></html>"""
    text = main_text(html)
    assert "Post 0:" in text and "Post 2:" in text
    assert "Oct 8, 2024" not in text and "Reactions:" not in text


def test_a_qa_sites_vote_counts_and_answers_header_go() -> None:
    def post(kind: str, n: int) -> str:
        return f"""<div class="{kind} js-{kind}"><div class="post-layout">
          <div class="votecell post-layout--left"><div class="js-vote-count">4{n}7</div></div>
          <div class="postcell post-layout--right"><div class="s-prose">{kind} {n}: {PARA}
          </div></div></div></div>"""

    answers = "".join(post("answer", n) for n in range(3))
    html = f"""<html><head><script type="application/ld+json">{{"@type": "QAPage"}}</script>
      </head><body><div id="mainbar" role="main">{post("question", 0)}
      <div id="answers"><div id="answers-header"><h2>3 Answers</h2></div>{answers}</div>
      </div></body></html>"""
    text = main_text(html)
    assert text.startswith("question 0:") and "answer 2:" in text
    assert "417" not in text and "3 Answers" not in text


def test_what_invision_leaves_out_of_a_posts_quote_goes() -> None:
    posts = "".join(
        f"""<article class="cPost ipsComment"><div class="ipsComment_content">
        <div data-role="commentContent" class="ipsType_richText">Post {n}: {PARA}</div>
        <p class="ipsType_reset ipsType_medium" data-excludequote>Edited May 22 by someone
        </p></div></article>"""
        for n in range(3)
    )
    html = f"""<html><head><script type="application/ld+json">
      {{"@type": "DiscussionForumPosting"}}</script></head><body><div id="elPostFeed">
      {posts}</div></body></html>"""
    text = main_text(html)
    assert "Post 0:" in text and "Post 2:" in text
    assert "Edited May 22" not in text


def test_a_page_made_of_cta_blocks_stays_though_it_says_it_is_an_article() -> None:
    # Elementor's call-to-action widgets, one per trail, on a page og:type calls an article
    # (as WordPress SEO plugins call every page); an article's lone cta box still goes.
    cards = "".join(
        f"""<div class="elementor-element elementor-element-{n}a elementor-cta--skin-classic
        elementor-widget"><div class="elementor-cta"><h3>Trail {n}</h3><p>Difficulty:
        beginner. Length: {n} miles. Steward: someone who keeps trail {n} open.</p>
        </div></div>"""
        for n in range(5)
    )
    head = '<head><meta property="og:type" content="article"></head>'
    text = main_text(f"<html>{head}<body><div class='page'><h1>Trails</h1>{cards}</div></body>")
    assert "keeps trail 0 open" in text and "keeps trail 4 open" in text
    box = '<div class="cta-box"><p>Get a free quote today</p></div>'
    text = main_text(f"<html>{head}<body><div class='page'><p>{PARA}</p>{box}</div></body>")
    assert "Plenty of words" in text and "free quote" not in text


def test_an_email_opt_in_box_goes() -> None:
    box = '<div class="optin__box"><h2>Be the first to know about new offers</h2></div>'
    html = f"<body><article><h1>Title</h1><p>{PARA}</p>{box}<p>{PARA}</p></article></body>"
    text = main_text(html)
    assert "Plenty of words" in text and "first to know" not in text


def test_a_bem_modifier_of_a_childs_element_does_not_name_the_block() -> None:
    # Adobe AEM: a cta block carries its button's width modifier; an element carries its
    # block's modifier. A modifier of the element's own class still names it.
    ctas = "".join(
        f"""<div class="cmp-cta cmp-cta__button--full-width"><h3>Section {n}</h3>
        <p>Unify {n}: {PARA}</p></div>"""
        for n in range(3)
    )
    html = f"""<body><div class="page"><div class="cmp-text"><h1>Services</h1><p>{PARA}</p>
      </div>{ctas}<div class="hero__title hero--nav"><p>Insights at scale: {PARA}</p></div>
      <div class="box box--sidebar"><p>Boxed sidebar junk</p></div></div></body>"""
    text = main_text(html)
    assert "Unify 0:" in text and "Unify 2:" in text
    assert "Insights at scale" in text
    assert "Boxed sidebar junk" not in text


def test_a_request_information_box_goes() -> None:
    box = '<div class="rfi__container"><h2>Request information about the program</h2></div>'
    html = f"<body><article><h1>Title</h1><p>{PARA}</p>{box}<p>{PARA}</p></article></body>"
    text = main_text(html)
    assert "Plenty of words" in text and "Request information" not in text


def test_a_vbulletin_posters_column_goes() -> None:
    # vBulletin 3: a table row per post, the poster's column (the cell holding the
    # "postmenu_<id>" user menu) beside the message.
    def post(n: int) -> str:
        return f"""<table id="post{n}"><tr><td class="alt2"><div id="postmenu_{n}"><a
          class="bigusername" href="/m{n}">user{n}</a></div><div class="smallfont">Registered
          User</div><div class="smallfont"><div>Join Date: Mar 2016</div><div>Posts: 1,077
          </div></div></td><td class="alt1" id="td_post_{n}"><div id="post_message_{n}">Post
          {n}: {PARA}</div></td></tr></table>"""

    posts = "".join(post(n) for n in range(3))
    text = main_text(f"<body><div id='posts'>{posts}</div></body>")
    assert "Post 0:" in text and "Post 2:" in text
    assert "Join Date" not in text and "Registered" not in text
