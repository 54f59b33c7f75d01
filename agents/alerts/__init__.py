"""Alert rules: moments on the embeddings topic checked against the rules on ``alerts.rules``;
matches published to ``alerts`` and POSTed to the rules' webhooks (docs/alerts.md)."""
