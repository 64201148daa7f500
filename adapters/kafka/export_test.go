package kafka

// Queued returns how many records of topic's partition wait for the next
// produce request, so tests can tell a Write has queued behind a request
// in flight without sleeping.
func (s *Sink) Queued(topic string, partition int) int {
	s.pmu.Lock()
	p := s.parts[topicPartition{topic, partition}]
	s.pmu.Unlock()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}
