"""Browser pages: sign-up and log-in, upload, result, history. Views stay thin."""
