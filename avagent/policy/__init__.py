"""Deciding: the policy stage, the offline command policy, the language-model loop, its memory
and perception context, and behaviours such as following the speaker."""
