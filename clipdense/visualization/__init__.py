from .anomaly import (AnomalyLocalVisualizer, draw_anomaly_heatmap,  # noqa: F401
                      anomaly_heatmap, run_anomaly_task)
