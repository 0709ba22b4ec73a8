"""Parse a written report.html: section ids, images per section, text."""

from html.parser import HTMLParser
from pathlib import Path


class ReportPage(HTMLParser):
    """Collects section ids, (section, img src) pairs and the text."""

    def __init__(self):
        super().__init__()
        self.sections, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        if tag == "img":
            self.images.append((self.sections[-1], attrs["src"]))

    def handle_data(self, data):
        self.text.append(data)


def parse_report(path: Path) -> ReportPage:
    page = ReportPage()
    page.feed(Path(path).read_text())
    return page
