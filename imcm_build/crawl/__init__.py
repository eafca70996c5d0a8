"""Crawling Douban book pages: polite client, SQLite frontier, WARC archive, page parser, CLI."""
