"""Object storage for avatars, clips and final videos: messages carry references, never bytes."""
