from .visualizer import TextVisualizer

__all__ = ["TextVisualizer"]
