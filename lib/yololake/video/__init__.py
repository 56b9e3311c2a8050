"""The extract-frames job (`main`): video -> frames. Sampling rules (sampling), PyAV decoding (decode), Spark steps
(tasks), config."""
