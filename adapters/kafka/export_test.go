package kafka

// Queued returns how many records of topic's partition wait for the next
// produce request, so tests can tell a Write has queued behind a request
// in flight without sleeping.
func (s *Sink) Queued(topic string, partition int) int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	p := s.parts[topicPartition{topic, partition}]
	if p == nil {
		return 0
	}
	return len(p.queue)
}
