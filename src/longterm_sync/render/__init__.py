"""Renderers: tables (data frames) from the pipelines, written as files people open.

The pipelines compute (fetch, reduce, build a :class:`pandas.DataFrame`); how a table looks
in a CSV or a colour-coded workbook is here, so that the next renderers (figures, HTML
reports) take the same frames without touching how they were computed.
"""
