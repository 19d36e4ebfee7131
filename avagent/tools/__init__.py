"""Tools: typed functions the agent may call, their spoken phrases, and the rules that bind every
call (permissions, confirmations, rate limits, timeouts), whoever asks for it."""
