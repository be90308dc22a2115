//! Runnable demos of buttress: see the `[[example]]` targets.
