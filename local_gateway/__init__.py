"""Local mode: the whole gateway on one machine (embedded AWS endpoint, API, host, poller).

Not part of the Lambda package: Chalice packages only app.py and chalicelib/.
"""
