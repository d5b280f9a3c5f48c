"""Alerts before marketers notice: conditions checked every few seconds, sent to webhooks.

``rules`` decides which conditions hold from one snapshot and the one a window earlier (pure);
``monitor`` takes the snapshots, fires each condition once, repeats it after the cooldown and
sends a resolved message when it clears; ``webhook`` formats Slack-compatible JSON and delivers
it with retries from its own task, so nothing waits on a receiver; ``cli`` is
``forwarder alerts test``.
"""
