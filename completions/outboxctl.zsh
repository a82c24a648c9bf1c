#compdef outboxctl

_outboxctl_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _OUTBOXCTL_COMPLETE=complete_zsh outboxctl)
}

compdef _outboxctl_completion outboxctl
