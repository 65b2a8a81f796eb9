"""Analytics: zone and line rules, checked on scripted ground-truth scenes."""
