"""The live feed registry's runner side: `vip feeds run` follows the compacted ``feeds``
topic (written by POST /v1/feeds and DELETE /v1/feeds/{id}) and runs one live publisher
(vip/live) per registered feed, saying how each one does on ``feeds.status``.

Modules: ``core`` (the pure state machine), ``runner`` (Kafka and threads), ``log`` (the
topics' records), ``sources`` (the source policy), ``cli``. Nothing here connects at import
time.
"""
