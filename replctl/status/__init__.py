"""`status`: read every account-region (fetch), turn the facts into verdicts (judge), one exit code."""
