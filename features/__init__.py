"""Each customer at t: observation points and labels, the feature catalogue, the Ibis windows."""
