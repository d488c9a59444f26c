"""The booking domain: calendars, dates, the confirm-before-write rule.

Pure Python over httpx and the database: it never imports pipecat, twilio, openai, fastapi or
`agent`, and never reads the wall clock (a `Clock` is passed in).
"""
