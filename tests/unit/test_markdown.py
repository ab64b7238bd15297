"""Markdown output: one small page per rule, the exact markdown, and what it renders back to.

Each markdown is also rendered with markdown-it-py (CommonMark + GFM tables) and the
rendered structure checked: no false code blocks, the table grid, fences with languages.
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from markdown_it import MarkdownIt

from service.crawl.parser import ParseOptions, parse_page

URL = "https://example.org/doc/page.html"


def markdown(html: str, *, main: bool = False) -> str:
    options = ParseOptions(formats=frozenset({"markdown"}), only_main_content=main)
    page = parse_page(html.encode(), URL, options)
    assert page.markdown is not None
    return page.markdown


def render(text: str) -> BeautifulSoup:
    html = MarkdownIt("commonmark").enable("table").render(text)
    return BeautifulSoup(html, "html.parser")


def test_definition_list_is_bold_term_and_unindented_blocks() -> None:
    html = """<dl class="py function">
      <dt class="sig" id="f">f(<em>x</em>, *args)<a class="headerlink" href="#f"
          title="Permalink to this definition">¶</a></dt>
      <dd><p>Do a thing.</p>
        <div class="highlight-python3 notranslate"><div class="highlight"><pre>f(1)

g()
</pre></div></div><p>More.</p></dd>
      <dt>term2</dt><dd>plain</dd></dl>"""
    expected = (
        "**f(*x*, \\*args)**\n\n"
        "Do a thing.\n\n"
        "```python3\nf(1)\n\ng()\n```\n\n"
        "More.\n\n"
        "**term2**\n\n"
        "plain"
    )
    assert markdown(html) == expected
    rendered = render(expected)
    # The paragraphs stay paragraphs: the only code block is the real example.
    assert [p.get_text() for p in rendered.find_all("p")] == [
        "f(x, *args)",
        "Do a thing.",
        "More.",
        "term2",
        "plain",
    ]
    blocks = rendered.find_all("pre")
    assert len(blocks) == 1
    assert blocks[0].code is not None
    assert blocks[0].code["class"] == ["language-python3"]
    assert blocks[0].get_text() == "f(1)\n\ng()\n"


def test_table_escapes_pipes_and_expands_merged_cells() -> None:
    html = """<table><thead><tr><th>Op</th><th>Result</th><th>Notes</th></tr></thead>
      <tbody><tr><td rowspan="2"><code>x | y</code></td><td>or</td><td>(1)</td></tr>
      <tr><td colspan="2">spans</td></tr>
      <tr><td>a</td><td>b</td><td>c</td></tr></tbody></table>"""
    expected = (
        "| Op | Result | Notes |\n"
        "| --- | --- | --- |\n"
        "| `x \\| y` | or | (1) |\n"
        "| `x \\| y` | spans |  |\n"
        "| a | b | c |"
    )
    assert markdown(html) == expected
    rendered = render(expected)
    rows = [[c.get_text() for c in tr.find_all(["td", "th"])] for tr in rendered.find_all("tr")]
    assert rows == [
        ["Op", "Result", "Notes"],
        ["x | y", "or", "(1)"],
        ["x | y", "spans", ""],
        ["a", "b", "c"],
    ]


def test_table_without_header_row_uses_its_first_row() -> None:
    html = "<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>"
    assert markdown(html) == "| a | b |\n| --- | --- |\n| 1 | 2 |"


def test_layout_table_becomes_its_paragraphs_and_lists() -> None:
    html = """<table class="contentstable"><tr>
      <td width="50%"><p class="biglink"><a href="a.html">What is new</a><br>
        <span>news</span></p><p><a href="b.html">Tutorial</a></p></td>
      <td><ul><li><a href="c.html">c()</a></li><li>d</li></ul></td></tr></table>"""
    expected = (
        "[What is new](https://example.org/doc/a.html)\\\nnews\n\n"
        "[Tutorial](https://example.org/doc/b.html)\n\n"
        "- [c()](https://example.org/doc/c.html)\n- d"
    )
    assert markdown(html) == expected
    rendered = render(expected)
    assert rendered.find("table") is None
    assert [li.get_text() for li in rendered.find_all("li")] == ["c()", "d"]


def test_code_in_a_list_keeps_its_blank_lines_and_language() -> None:
    html = """<ol><li><p>Step</p><pre class="language-js"><code>let a = 1;


  b();
</code></pre></li><li>two</li></ol>
      <pre class="brush: js;">x  =  1</pre>
      <div class="sourceCode"><pre class="sourceCode python"><code>y</code></pre></div>
      <pre>has ``` inside</pre>"""
    expected = (
        "1. Step\n\n"
        "   ```js\n   let a = 1;\n\n\n     b();\n   ```\n"
        "2. two\n\n"
        "```js\nx  =  1\n```\n\n"
        "```python\ny\n```\n\n"
        "````\nhas ``` inside\n````"
    )
    assert markdown(html) == expected
    rendered = render(expected)
    blocks = rendered.find_all("pre")
    assert [b.get_text() for b in blocks] == [
        "let a = 1;\n\n\n  b();\n",
        "x  =  1\n",
        "y\n",
        "has ``` inside\n",
    ]
    assert blocks[0].find_parent("li") is not None
    assert len(rendered.find_all("li")) == 2


def test_permalinks_nbsp_and_blank_runs() -> None:
    html = """<h2>Title<a class="headerlink" href="#title"
        title="Permalink to this heading">¶</a></h2>
      <p>a\xa0b\xa0 c <a href="#x">#</a></p><p></p><p></p><div></div><p>d</p>"""
    assert markdown(html) == "## Title\n\na b c\n\nd"


def test_permalinks_are_not_text_either() -> None:
    html = '<h2>Title<a class="headerlink" href="#t">¶</a></h2><p>Body</p>'
    page = parse_page(html.encode(), URL, ParseOptions(formats=frozenset({"text"})))
    assert page.text == "Title\n\nBody"


def test_admonitions_are_blockquotes_with_their_title() -> None:
    html = """<div class="admonition note"><p class="admonition-title">Note</p>
        <p>Body one.</p><p>Body two.</p></div>
      <div class="warning"><h3 class="title">Warning</h3><p>Careful.</p></div>
      <div class="admonition tip"><p>Untitled.</p></div>"""
    expected = (
        "> **Note**\n>\n> Body one.\n>\n> Body two.\n\n"
        "> **Warning**\n>\n> Careful.\n\n"
        "> **Tip**\n>\n> Untitled."
    )
    assert markdown(html) == expected
    quotes = render(expected).find_all("blockquote")
    assert [q.strong.get_text() for q in quotes if q.strong] == ["Note", "Warning", "Tip"]


def test_figures_keep_image_caption_and_link() -> None:
    html = """<figure><object data="../_images/x.svg" type="image/svg+xml">Diagram</object>
        <figcaption><p>The caption<a class="headerlink" href="#id1">¶</a></p></figcaption>
      </figure>
      <figure><a href="big.png"><img src="small.png" alt="Small"></a>
        <figcaption>Cap 2</figcaption></figure>
      <object data="movie.swf" type="application/x-shockwave-flash">no</object>"""
    expected = (
        "![Diagram](https://example.org/_images/x.svg)\n\nThe caption\n\n"
        "[![Small](https://example.org/doc/small.png)](https://example.org/doc/big.png)\n\n"
        "Cap 2"
    )
    assert markdown(html) == expected
    images = render(expected).find_all("img")
    assert [i["src"] for i in images] == [
        "https://example.org/_images/x.svg",
        "https://example.org/doc/small.png",
    ]


@pytest.mark.parametrize("main", [False, True])
def test_markdown_and_text_agree_on_what_is_content(main: bool) -> None:
    html = """<body><nav><a href="/">Home</a></nav><main><h1>Head</h1>
      <p>Para with <a href="x">link</a>.</p></main><footer>Foot</footer></body>"""
    text = markdown(html, main=main)
    assert ("Home" in text) is not main
    assert "Para with [link](https://example.org/doc/x)." in text


def test_source_line_breaks_and_odd_spaces_are_plain_spaces() -> None:
    html = "<p>one\n  two\u2009three\xa0four\u202ffive</p><p>a<br>\n  b<br></p>"
    expected = "one two three four five\n\na\\\nb"
    assert markdown(html) == expected
    assert render(expected).find_all("p")[0].get_text() == "one two three four five"


def test_whitespace_only_link_keeps_the_words_apart() -> None:
    assert markdown('<p>foo<a href="x"> </a>bar</p>') == "foo bar"


def test_nested_bold_is_emitted_once() -> None:
    expected = "**x** and *y*"
    assert markdown("<p><b><strong>x</strong></b> and <em><i>y</i></em></p>") == expected
    assert render(expected).find("strong").get_text() == "x"


def test_link_around_blocks_is_one_linked_line() -> None:
    html = '<div><a href="/p"><h3>Title</h3><p>Some text</p></a></div>'
    expected = "[Title Some text](https://example.org/p)"
    assert markdown(html) == expected
    assert render(expected).find("a").get_text() == "Title Some text"


def test_a_link_around_a_carousel_keeps_its_words_not_its_images() -> None:
    carousel = (
        '<ul><li><img src="/a.jpg" alt="Shoe 0"></li><li><img src="/b.jpg" alt="Shoe 1"></li></ul>'
    )
    html = (
        f'<div><a href="/p">{carousel}<h3>Shoe</h3></a></div><div><a href="/q">{carousel}</a></div>'
    )
    expected = "[Shoe](https://example.org/p)\n\n[![Shoe 0](https://example.org/a.jpg)](https://example.org/q)"
    assert markdown(html) == expected


def test_no_line_ends_in_spaces() -> None:
    html = "<div>trail <b>b</b> \n</div><p>x <span> </span></p><p>a<br>b</p>"
    assert all(line == line.rstrip() for line in markdown(html).split("\n"))


def test_content_after_body_and_html_is_in_the_markdown() -> None:
    html = "<html><body><p>in body</p></body></html><div>after</div><footer>foot</footer>"
    text = markdown(html)
    assert text == "in body\n\nafter\n\nfoot"


def test_block_start_markup_in_prose_is_escaped() -> None:
    html = """<p>10. October</p><p>- dash</p><p>+ plus</p><p># hash</p><p>&gt; quote</p>
      <ul><li>- item</li></ul><p>In 10. text</p>"""
    expected = (
        "10\\. October\n\n\\- dash\n\n\\+ plus\n\n\\# hash\n\n\\> quote\n\n- \\- item\n\n"
        "In 10. text"
    )
    assert markdown(html) == expected
    rendered = render(expected)
    assert rendered.find("ol") is None and rendered.find("h1") is None
    assert rendered.find("blockquote") is None
    assert [li.get_text() for li in rendered.find_all("li")] == ["- item"]


def test_emphasis_that_cannot_close_is_dropped() -> None:
    html = "<p>a<b> </b>b</p><b><p>one</p><p>two</p></b>"
    expected = "a b\n\none\n\ntwo"
    assert markdown(html) == expected
    assert "*" not in expected
