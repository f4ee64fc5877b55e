"""The live-video family: face detection and tracking, the emotion mirror, rehearsal feedback,
and synthetic scenes (FER2013 faces pasted into frames) for demos, tests and benchmarks."""
