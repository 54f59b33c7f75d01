"""The Faust app, the pipeline's topics and its versioned event records."""
