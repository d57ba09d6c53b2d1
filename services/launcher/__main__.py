try:
    from services.launcher.main import main
except KeyboardInterrupt:  # Ctrl-C while importing: nothing was started yet
    raise SystemExit(130) from None

raise SystemExit(main())
