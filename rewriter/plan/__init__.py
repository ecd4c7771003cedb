"""Plan writing: plan steps from a partition, the plan document, layout views, calibration
propagation, and the atomic, validated write of a plan folder (format: runtime/schema.py)."""
