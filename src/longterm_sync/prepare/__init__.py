"""prepare_schedule's building blocks: participants, reply-form questions, schedule documents."""
