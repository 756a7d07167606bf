"""Dispatch of one attempt: the HTTP request a task becomes, tokens, and sending it."""
